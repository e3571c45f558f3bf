"""The recipe's config: one YAML holding each step's own config (a factory config, a prepare config, ...)
minus the keys that wire steps together, which the recipe fills in from ``storage_path``.

A string ``@STEP`` (or ``@STEP/sub/path``) anywhere in a step's section means that step's published
output: ``perplexity: {sets: {domain: {path: "@prepare", tokenizer: "@prepare/tokenizer"}}}``.
Defaults: ``recipe/presets/recipe.yaml``, then each job's own presets when its step config is loaded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, model_validator

from core.config import StrictModel, load_layered, read_yaml
from core.ray_runtime import RayConfig

RECIPE_PRESET = Path(__file__).resolve().parent / "presets" / "recipe.yaml"


class SynthSection(StrictModel):
    endpoints: dict[str, dict[str, Any]] = Field(description="OpenAI-compatible servers, shared by both synth steps.")
    sft: dict[str, Any] = Field(description="A synth SFT config without output_dir, input.path, endpoints, cache_path.")
    preferences: dict[str, Any] = Field(description="A synth preferences config without output_dir, "
                                                    "preferences.input.path, endpoints, cache_path.")


class ReviewSection(StrictModel):
    db: str | None = Field(description="The review database; null: <storage_path>/reviews.sqlite.")
    overlap: int = Field(gt=0, description="Independent decisions wanted per pair.")
    require_reviews: bool = Field(description="true: stop before DPO when no pair has a review; false: DPO trains "
                                              "on the judge-approved pairs, said loudly.")


class BaseModelSection(StrictModel):
    path: str | None = Field(None, description="A pre-trained model: local directory or hub id.")
    init: dict[str, Any] | None = Field(None, description="Or a model initialised from a config (train/presets/"
                                                          "init.yaml) with the prepare step's trained tokenizer.")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.path is None) == (self.init is None):
            raise ValueError("give exactly one of base_model.path (a pre-trained model) and base_model.init "
                             "(a model built from a config)")
        return self


class TrainSection(StrictModel):
    common: dict[str, Any] = Field(description="Merged under each stage's section (scaling, deepspeed, run, ...).")
    cpt: dict[str, Any]
    sft: dict[str, Any]
    dpo: dict[str, Any]


class RecipeConfig(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Names the training runs (<name>-cpt, ...).")
    storage_path: str = Field(description="Where every step publishes its output (<storage_path>/<step>): a "
                                          "directory every node of the cluster can see (NFS, a mounted bucket).")
    train_storage_path: str | None = Field(description="Ray Train checkpoints (a path or s3://...); null: "
                                                       "<storage_path>/train_checkpoints.")
    ray: RayConfig = RayConfig()
    factory: dict[str, Any]
    prepare: dict[str, Any]
    synth: SynthSection
    review: ReviewSection
    base_model: BaseModelSection
    train: TrainSection
    eval: dict[str, Any]
    _source: str = PrivateAttr("recipe")  # the file it was loaded from: errors name it

    @model_validator(mode="after")
    def _storage_is_a_filesystem(self):
        if "://" in self.storage_path:
            raise ValueError("storage_path must be a filesystem path every node sees (an NFS or mounted bucket "
                             "path) for now: every job publishes to s3:// on its own, but the whole recipe on "
                             "object storage (the review database, the step configs) is not done yet. "
                             "train_storage_path may be s3://")
        return self

    @property
    def storage(self) -> Path:
        return Path(self.storage_path).expanduser().resolve()

    @property
    def source(self) -> str:
        return self._source


def load_recipe_config(path: str | Path, overrides: dict | None = None) -> RecipeConfig:
    recipe = load_layered(RecipeConfig, path, [read_yaml(RECIPE_PRESET)], overrides)
    recipe._source = str(path)
    return recipe
