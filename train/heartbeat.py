"""Where a run's rank 0 says it is alive, for the driver's stall watchdog (kept free of torch: the driver
imports it)."""
from __future__ import annotations

from pathlib import Path

from train.config import TrainConfig

HEARTBEAT = "heartbeat.txt"


def heartbeat_file(config: TrainConfig) -> Path | None:
    """The run's folder in a local storage_path; None for cloud storage (the watchdog is off there)."""
    if "://" in config.run.storage_path:
        return None
    return Path(config.run.storage_path).expanduser().resolve() / config.run.name / HEARTBEAT
