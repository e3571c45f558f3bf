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
from core.local_copy import cache_root
from core.storage import is_uri

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
    storage_path: str = Field(description="Where every step publishes its output (<storage_path>/<step>), with the "
                                          "step configs, recipe_manifest.json and summary.md: a directory every "
                                          "node of the cluster sees (NFS), or object storage (s3://bucket/prefix).")
    state_dir: str | None = Field(description="Local disk for the files SQLite keeps (the review database, the "
                                              "synth cache), which cannot live on object storage: on a cluster, the "
                                              "head node's disk, where the recipe's driver and the review app run. "
                                              "null: storage_path itself when it is a local path, else "
                                              "$DOMAIN_FACTORY_CACHE/recipes/<name> (default ~/.cache/domain-factory).")
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
    def _state_dir_is_local(self):
        if self.state_dir is not None and is_uri(self.state_dir):
            raise ValueError(f"state_dir: {self.state_dir}: must be a local directory (SQLite needs a local disk)")
        return self

    @property
    def remote(self) -> bool:
        return is_uri(self.storage_path)

    @property
    def storage(self) -> str:
        """storage_path as every step is told it: a URI as written, a local path absolute."""
        return self.storage_path.rstrip("/") if self.remote else str(Path(self.storage_path).expanduser().resolve())

    def at(self, *parts: str) -> str:
        """A path under the storage: ``recipe.at("models", "cpt")``."""
        return "/".join([self.storage, *parts]) if self.remote else str(Path(self.storage, *parts))

    def holds(self, path: str) -> bool:
        """Whether ``path`` is the recipe's own (an earlier step's output, or the review database in the state
        folder, whose decisions the review step tracks itself), not an external input."""
        if is_uri(path):
            return path.startswith(self.storage + "/")
        roots = [self.state] if self.remote else [Path(self.storage), self.state]
        return any(Path(path).resolve().is_relative_to(root) for root in roots)

    @property
    def state(self) -> Path:
        """Where the recipe's SQLite files live (see ``state_dir``): always a local directory."""
        if self.state_dir is not None:
            return Path(self.state_dir).expanduser().resolve()
        if not self.remote:
            return Path(self.storage)
        return cache_root().parent / "recipes" / self.name

    @property
    def source(self) -> str:
        return self._source


def load_recipe_config(path: str | Path, overrides: dict | None = None) -> RecipeConfig:
    recipe = load_layered(RecipeConfig, path, [read_yaml(RECIPE_PRESET)], overrides)
    recipe._source = str(path)
    return recipe
