"""The review app's settings, from ``quality/presets/review.yaml`` under an optional user file."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field

from core.config import StrictModel, load_layered, read_yaml

DEFAULTS = Path(__file__).resolve().parents[1] / "presets" / "review.yaml"


class ReviewConfig(StrictModel):
    lease_s: float = Field(gt=0, description="How long an item stays with the annotator it was shown to.")
    session_hours: float = Field(gt=0, description="How long a login lasts.")
    overlap: int = Field(ge=1, description="Independent decisions per item, when `review load` is not told.")
    export_dir: str = Field(description="Where the admin page's Export publishes the reviewed set "
                                        "(review serve --export-out overrides).")
    host: str
    port: int = Field(ge=0, le=65535)


def load_review_config(path: str | Path | None = None) -> ReviewConfig:
    if path is None:
        return ReviewConfig.model_validate(read_yaml(DEFAULTS))
    return load_layered(ReviewConfig, path, [read_yaml(DEFAULTS)])
