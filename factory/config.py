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

from core.config import StrictModel, load_layered, read_yaml
from core.errors import ConfigError
from core.ray_runtime import RayConfig
from core.storage import StorageConfig, default_storage
from quality.config import GateSettings

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


# datatrove filters that would download a model: they take a local file as ``model_path`` instead
FILTERS_WITH_LOCAL_MODEL = {"LanguageFilter": "a local fastText lid.176.bin (and the fasttext package)"}


class DatatroveFilter(StrictModel):
    """One of datatrove's filters, by class name, with its own keyword arguments (checked against the
    class's signature). Adding a filter to a run is an entry under ``filters:``, nothing more."""

    model_config = ConfigDict(extra="allow")
    datatrove: str = Field(description="Class name in datatrove.pipeline.filters, e.g. GopherQualityFilter.")
    enabled: bool
    model_path: str | None = Field(None, description="Local model file, for filters that would download one.")

    @model_validator(mode="after")
    def _check(self):
        import datatrove.pipeline.filters as filters

        known = sorted(n for n in dir(filters) if n.endswith("Filter"))
        if self.datatrove not in known:
            raise ValueError(f"unknown datatrove filter {self.datatrove!r}; datatrove.pipeline.filters has {known}")
        allowed = set(inspect.signature(self.filter_class().__init__).parameters) - {"self", "exclusion_writer"}
        unknown = sorted(set(self.params) - allowed)
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for datatrove {self.datatrove}; allowed: {sorted(allowed)}")
        if self.enabled and self.datatrove in FILTERS_WITH_LOCAL_MODEL:
            self._check_local_model()
        return self

    def _check_local_model(self) -> None:
        needs = FILTERS_WITH_LOCAL_MODEL[self.datatrove]
        if not self.model_path:
            raise ValueError(f"{self.datatrove} is not available offline: no model_path given. "
                             f"Set model_path to {needs}, or enabled: false")
        if not Path(self.model_path).is_file():
            raise ValueError(f"{self.datatrove} is not available: model_path {self.model_path} does not exist")
        try:
            import fasttext  # noqa: F401
        except ImportError:
            raise ValueError(f"{self.datatrove} needs the fasttext package (pip install fasttext-numpy2-wheel)")

    def filter_class(self) -> type:
        import datatrove.pipeline.filters as filters

        return getattr(filters, self.datatrove)

    @property
    def params(self) -> dict[str, Any]:
        """The keyword arguments for datatrove; YAML lists of pairs become the tuples datatrove expects."""
        return {key: tuple(map(tuple, v)) if _is_pairs(v) else v for key, v in (self.model_extra or {}).items()}


def _is_pairs(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, list) for v in value)


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


class RayDataConfig(RayConfig):
    """Ray settings of the jobs that run Ray Data pipelines (factory run and prepare)."""

    batch_size: int = Field(gt=0, description="Documents per map_batches call.")
    rows_per_block: int = Field(gt=0, description="Input is re-blocked to this many rows so small files still spread over all CPUs.")
    operator_reservation: bool = Field(
        description="Ray Data's per-operator resource reservation. It keeps CPUs for every operator, the writer "
                    "included, so on a few CPUs the costly map pass gets only part of them.")
    stall_timeout_s: float | None = Field(
        gt=0, description="Fail, naming the stage, when a pass moves no block (Ray Data's no-progress guard) or a "
                          "dedup step finishes no partition task for this long; null: wait forever.")
    shuffle_partitions: int | None = Field(
        description="Hash partitions of shuffled tables (dedup's, prepare's groupbys); null: one per cluster CPU, "
                    "and for dedup more when the corpus has over rows_per_partition documents per CPU.")
    blocks_per_group: int = Field(
        gt=0, description="Blocks (of rows_per_block rows) per CPU in a block group, the unit a killed run resumes "
                          "by (docs/RESUME.md): each group is one Ray Data execution, so fewer, larger groups cost "
                          "less start-up; smaller ones redo less after a kill.")


class FactoryRayConfig(RayDataConfig):
    rows_per_partition: int = Field(
        gt=0, description="Most documents per dedup partition when shuffle_partitions is null: one task holds one "
                          "partition of keys and MinHash signatures (about 0.6 KB a document).")


class FactoryConfig(StrictModel):
    output_dir: str
    preset: str
    sources: list[SourceConfig] = Field(min_length=1)
    limits: LimitsConfig
    normalise: NormaliseConfig
    redact: RedactConfig
    filters: dict[str, DatatroveFilter] = Field(
        description="Run in the order base.yaml lists them, then any a preset or the user adds; a document is "
        "rejected by the first filter it fails, with reason <name>:<datatrove's reason>."
    )
    dedup: DedupConfig
    ray: FactoryRayConfig
    # how s3:// and other URIs are reached: it cannot change the output, so it stays out of the config hash
    storage: StorageConfig = Field(default_factory=default_storage, exclude=True,
                                   description="How s3:// and other URIs are reached (core/presets/storage.yaml).")
    quality: GateSettings = GateSettings()

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


def preset_layers(user: dict, source: str = "config") -> list[dict]:
    """The storage defaults, base.yaml, then the preset the user's file names (``web`` when it names none)."""
    preset = user.get("preset", "web")
    if preset not in available_presets():
        raise ConfigError(f"{source}: preset: unknown preset {preset!r}; available: {available_presets()}")
    # a user's partial storage: section (say, only scratch_dir) lands on core/presets/storage.yaml
    return [{"storage": default_storage().model_dump()}, read_yaml(PRESETS_DIR / "base.yaml"),
            read_yaml(PRESETS_DIR / f"{preset}.yaml")]


def load_factory_config(path: str | Path, overrides: dict | None = None) -> FactoryConfig:
    return load_layered(FactoryConfig, path, lambda user: preset_layers(user, str(path)), overrides)
