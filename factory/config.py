"""The factory job's config: pydantic models, loaded from YAML on top of a preset.

Numbers (thresholds, placeholders, MinHash sizes) live in ``factory/presets/*.yaml``,
never here: ``base.yaml`` holds the defaults every run starts from, a domain preset
(``scientific``, ``web``) adjusts the filters, and the user's file has the last word.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from factory.common.config_loading import (
    ConfigError,
    StrictModel,
    deep_merge,
    read_yaml,
    validate_config,
)

PRESETS_DIR = Path(__file__).parent / "presets"


class SourceConfig(StrictModel):
    name: str = Field(description="Source label written into every document's `source` column.")
    path: str | list[str] = Field(description="A file, a directory, a glob, or a list of these.")
    format: Literal["parquet", "jsonl"] | None = Field(None, description="Inferred from the extension when absent.")
    text_column: str
    id_column: str | None = Field(
        description="Column with a unique document id; null makes ids from file name and row/line number."
    )
    domain: Literal["domain", "general"]
    meta_columns: list[str] = Field(default_factory=list, description="Columns kept in the JSON `meta` column.")


class LimitsConfig(StrictModel):
    max_chars: int = Field(gt=0, description="Longer documents are rejected as too_long before any text work.")


class NormaliseConfig(StrictModel):
    ftfy: bool
    unwrap_hard_wraps: bool = Field(
        description="Join lines broken inside a paragraph (arXiv-style hard wraps); blank lines stay paragraph breaks."
    )


class RedactConfig(StrictModel):
    emails: bool
    ips: bool
    phones: bool
    email_placeholder: str
    ip_placeholder: str
    phone_placeholder: str


class DatatroveFilterConfig(StrictModel):
    """A datatrove filter switch plus keyword arguments checked against the filter's own signature."""

    model_config = ConfigDict(extra="allow")
    enabled: bool

    @model_validator(mode="after")
    def _check_params(self):
        allowed = set(inspect.signature(self.filter_class().__init__).parameters) - {"self", "exclusion_writer"}
        unknown = sorted(set(self.params) - allowed)
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {unknown} for datatrove {self.filter_class().__name__}; "
                f"allowed: {sorted(allowed)}"
            )
        return self

    @property
    def params(self) -> dict[str, Any]:
        return {key: tuple(map(tuple, v)) if _is_pairs(v) else v for key, v in (self.model_extra or {}).items()}

    def filter_class(self) -> type:
        raise NotImplementedError


def _is_pairs(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, list) for v in value)


class GopherQualityConfig(DatatroveFilterConfig):
    def filter_class(self):
        from datatrove.pipeline.filters import GopherQualityFilter

        return GopherQualityFilter


class GopherRepetitionConfig(DatatroveFilterConfig):
    def filter_class(self):
        from datatrove.pipeline.filters import GopherRepetitionFilter

        return GopherRepetitionFilter


class C4QualityConfig(DatatroveFilterConfig):
    def filter_class(self):
        from datatrove.pipeline.filters import C4QualityFilter

        return C4QualityFilter


class FineWebQualityConfig(DatatroveFilterConfig):
    def filter_class(self):
        from datatrove.pipeline.filters import FineWebQualityFilter

        return FineWebQualityFilter


class LanguageFilterConfig(StrictModel):
    enabled: bool
    languages: list[str]
    threshold: float = Field(ge=0, le=1)
    model_path: str | None = Field(description="Local fastText lid.176.bin; no model is downloaded.")

    @model_validator(mode="after")
    def _model_available(self):
        if not self.enabled:
            return self
        if not self.model_path:
            raise ValueError(
                "language filtering is not available offline: no model_path given. Set "
                "filters.language.model_path to a local fastText lid.176.bin, or enabled: false"
            )
        if not Path(self.model_path).is_file():
            raise ValueError(f"language filtering is not available: model_path {self.model_path} does not exist")
        try:
            import fasttext  # noqa: F401
        except ImportError:
            raise ValueError("language filtering needs the fasttext package (pip install fasttext-numpy2-wheel)")
        return self


class FiltersConfig(StrictModel):
    """Applied in this order; a document is rejected by the first filter it fails."""

    gopher_repetition: GopherRepetitionConfig
    gopher_quality: GopherQualityConfig
    c4: C4QualityConfig
    fineweb: FineWebQualityConfig
    language: LanguageFilterConfig


class ExactDedupConfig(StrictModel):
    enabled: bool


class FuzzyDedupConfig(StrictModel):
    enabled: bool
    ngram_size: int = Field(gt=0, description="Words per shingle.")
    num_bands: int = Field(gt=0)
    rows_per_band: int = Field(gt=0)
    threshold: float = Field(gt=0, le=1, description="Estimated Jaccard at or above which two documents are duplicates.")
    seed: int

    @property
    def num_perm(self) -> int:
        return self.num_bands * self.rows_per_band


class DedupConfig(StrictModel):
    exact: ExactDedupConfig
    fuzzy: FuzzyDedupConfig


class RayConfig(StrictModel):
    address: str | None = Field(description="null: join RAY_ADDRESS if set (ray job submit), else start Ray locally.")
    batch_size: int = Field(gt=0, description="Documents per map_batches call.")
    rows_per_block: int = Field(gt=0, description="Input is re-blocked to this many rows so small files still spread over all CPUs.")
    shuffle_partitions: int | None = Field(description="Partitions of the dedup groupby shuffles; null: one per cluster CPU.")
    num_cpus: int | None = Field(description="CPUs for a locally started Ray; null uses all.")


class FactoryConfig(StrictModel):
    output_dir: str
    preset: str
    sources: list[SourceConfig] = Field(min_length=1)
    limits: LimitsConfig
    normalise: NormaliseConfig
    redact: RedactConfig
    filters: FiltersConfig
    dedup: DedupConfig
    ray: RayConfig

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources):
        names = [s.name for s in sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique, repeated: {dupes}")
        return sources


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml") if p.stem != "base")


def resolve_raw_config(user: dict, source: str) -> dict:
    """base.yaml <- preset <- user file; returns the merged mapping."""
    preset = user.get("preset", "web")
    if preset not in available_presets():
        raise ConfigError(f"{source}: preset: unknown preset {preset!r}; available: {available_presets()}")
    merged = deep_merge(read_yaml(PRESETS_DIR / "base.yaml"), read_yaml(PRESETS_DIR / f"{preset}.yaml"))
    return deep_merge(merged, user)


def load_factory_config(path: str | Path, overrides: dict | None = None) -> FactoryConfig:
    raw = resolve_raw_config(read_yaml(path), str(path))
    if overrides:
        raw = deep_merge(raw, overrides)
    return validate_config(FactoryConfig, raw, str(path))
