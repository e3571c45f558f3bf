"""Stage inputs as Ray Data datasets, streamed from Parquet, with their contract checked up front.

The driver reads only Parquet schemas; rows are read by Ray Data tasks and reach the
workers through ``ray.train.get_dataset_shard``.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from factory.common.config_loading import ConfigError
from train.config import TrainConfig

REQUIRED_COLUMNS = {
    "cpt": ["input_ids", "doc_lengths"],
    "sft": ["messages"],
    "dpo": ["prompt", "chosen", "rejected"],
}


def parquet_files(path: str) -> list[str]:
    if "://" in path:
        return [path]
    root = Path(path).expanduser()
    files = [root] if root.is_file() else sorted(root.rglob("*.parquet"))
    if not files:
        raise ConfigError(f"data.train: {path} holds no .parquet files")
    return [str(f) for f in files]


def check_contract(config: TrainConfig) -> list[str]:
    """Every input file has the stage's columns; the message names the file and the column."""
    files = parquet_files(config.data.train)
    needed = list(REQUIRED_COLUMNS[config.stage])
    if config.stage == "dpo" and config.data.review_status is not None:
        needed.append("review_status")
    for file in files:
        if "://" in file:
            continue
        try:
            names = pq.read_schema(file).names
        except Exception as exc:  # pyarrow raises several types for unreadable files
            raise ConfigError(f"data.train: {file}: not readable as Parquet: {exc}") from None
        missing = [c for c in needed if c not in names]
        if missing:
            raise ConfigError(
                f"data.train: {file}: missing column(s) {missing} of the {config.stage} contract (has {names})"
            )
    return files


def train_dataset(config: TrainConfig):
    import ray.data

    columns = list(REQUIRED_COLUMNS[config.stage])
    if config.stage == "dpo" and config.data.review_status is not None:
        columns.append("review_status")
    ds = ray.data.read_parquet(check_contract(config), columns=columns)
    if config.stage == "dpo" and config.data.review_status is not None:
        keep = set(config.data.review_status)
        ds = ds.filter(lambda row: row["review_status"] in keep).drop_columns(["review_status"])
    if config.stage != "cpt":
        # every worker reads the whole (small) SFT/DPO set in the same order; the HF trainer's
        # distributed sampler splits it, so the order must not depend on task timing
        ds.context.execution_options.preserve_order = True
    return ds


def split_datasets(config: TrainConfig) -> list[str]:
    """CPT streams a disjoint shard per worker; SFT/DPO give each worker the full set for trl."""
    return ["train"] if config.stage == "cpt" else []
