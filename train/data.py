"""A stage's input as a Ray Data dataset, streamed from Parquet, with its contract checked up front.

The driver reads only Parquet schemas; rows are read by Ray Data tasks and reach the workers
through ``ray.train.get_dataset_shard``.
"""
from __future__ import annotations

from core.contracts import data_folders
from core.parquet import parquet_files, published_data_dir, require_columns
from train.config import TrainConfig
from train.method import TrainingMethod

KEY = "data.train"


def input_files(config: TrainConfig, stage: TrainingMethod) -> list[str]:
    """Every input file (local or a URI) holds the stage's columns; the error names the file and the column."""
    files = parquet_files(published_data_dir(config.data.train, data_folders("training")), KEY)
    require_columns(files, {column: f"the {stage.name} contract" for column in stage.columns(config)}, KEY)
    return [str(f) for f in files]


def train_dataset(config: TrainConfig, stage: TrainingMethod):
    import ray.data

    ds = ray.data.read_parquet(input_files(config, stage), columns=stage.columns(config))
    if stage.select_rows is not None:
        ds = stage.select_rows(ds, config)
    if not stage.shard_per_worker:
        # every worker reads the whole set in the same order; the HF trainer's distributed sampler
        # splits it, so the order must not depend on task timing
        ds.context.execution_options.preserve_order = True
    return ds


def datasets_to_split(stage: TrainingMethod) -> list[str]:
    """A sharding stage streams a disjoint shard per worker; the others give each worker the whole set."""
    return ["train"] if stage.shard_per_worker else []
