"""The quality suites' thresholds: one section per dataset kind, from ``quality/presets/defaults.yaml``
under an optional user file. The ``quality:`` section of a job's config (``GateSettings``) says whether
the job gates its output and with which file."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from core.config import StrictModel, layer_label, load_layered, read_yaml, remember_layers

DEFAULTS = Path(__file__).parent / "presets" / "defaults.yaml"
KINDS = ("documents", "cpt", "sft", "preferences", "reviews")
PiiKind = Literal["emails", "ips", "phones"]


class Bounds(StrictModel):
    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self):
        if self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        return self


class ContextConfig(StrictModel):
    """Does the longest text a row renders fit the model's context? Measured on a hash sample of rows."""

    tokenizer: str | None = Field(description="Local tokenizer directory; null estimates from UTF-8 bytes.")
    bytes_per_token: float = Field(gt=0, description="The estimate's bytes per token, without a tokenizer.")
    max_tokens: int = Field(gt=0, description="The model's context length.")
    sample_rows: int = Field(gt=0, description="Rows tokenised (a hash sample; the rest are not).")


class DocumentsChecks(StrictModel):
    text_chars: Bounds
    max_duplicate_rate: float = Field(ge=0, le=1)
    pii: list[PiiKind]


class CptChecks(StrictModel):
    seq_len: int | None = Field(None, gt=1)
    domain_share_tolerance: float = Field(ge=0, le=1)


class SftChecks(StrictModel):
    conversation_chars: Bounds
    max_duplicate_rate: float = Field(ge=0, le=1)
    pii: list[PiiKind]
    task_type_share: Bounds
    variant_share: Bounds
    context: ContextConfig


class PreferenceChecks(StrictModel):
    text_chars: Bounds
    max_duplicate_rate: float = Field(ge=0, le=1)
    pii: list[PiiKind]
    review_status: list[str] = Field(min_length=1)
    context: ContextConfig


class QualityConfig(StrictModel):
    examples: int = Field(ge=0)
    min_rows: int = Field(ge=1, description="A dataset with fewer rows fails its gate (an empty one always does).")
    documents: DocumentsChecks
    cpt: CptChecks
    sft: SftChecks
    preferences: PreferenceChecks
    reviews: PreferenceChecks


def load_quality_config(path: str | Path | None = None) -> QualityConfig:
    """The defaults, under ``path`` when given."""
    if path is None:
        defaults = read_yaml(DEFAULTS)
        config = QualityConfig.model_validate(defaults)
        remember_layers(config, [(layer_label(defaults, ""), defaults)])  # for --print-config
        return config
    return load_layered(QualityConfig, path, [read_yaml(DEFAULTS)])


class GateSettings(StrictModel):
    """A job's ``quality:`` section: validate the output before it is published."""

    gate: bool = Field(True, description="false: publish without validating (the row floor still holds).")
    config: str | None = Field(None, description="A quality config file with thresholds (see quality/presets).")
    min_rows: int | None = Field(None, ge=1, description="Fewer rows fail the run, exit 1, even with gate: false; "
                                 "null: the thresholds file's min_rows (1: an empty output always fails).")

    @model_validator(mode="after")
    def _thresholds_load(self):
        if self.gate and self.config is not None:
            load_quality_config(self.config)  # a typo in the thresholds file is an error now, not after the work
        return self
