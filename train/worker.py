"""What every stage's ``train_loop_per_worker`` shares: its setup (config, scratch dir, callbacks), the
whole-set data path of the small SFT-style sets, and the fit that hands the trainer to Ray
(``prepare_trainer``) and resumes from Ray's latest checkpoint."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ray.train

from train.callbacks import callbacks
from train.config import TrainConfig, worker_config
from train.deepspeed_config import start_deepspeed


@dataclass
class WorkerSetup:
    config: TrainConfig
    scratch: str  # this worker's dir for the trainer's local checkpoints (removed after the fit)
    callbacks: list  # metrics, TensorBoard (rank 0), Ray reporting


def setup_worker(config_dict: dict) -> WorkerSetup:
    config = worker_config(config_dict)
    rank = ray.train.get_context().get_world_rank()
    start_deepspeed(config)
    # per rank: each rank uploads its own files (DeepSpeed shards) into the same Ray checkpoint
    scratch = tempfile.mkdtemp(prefix=f"train-{config.run.name}-rank{rank}-")
    return WorkerSetup(config, scratch, callbacks(config, tensorboard_dir(config)))


def tensorboard_dir(config: TrainConfig) -> str:
    """TensorBoard event files go beside the Ray run in storage when it is a local path."""
    if "://" in config.run.storage_path:
        return os.path.join(tempfile.gettempdir(), "tensorboard", config.run.name)
    return str(Path(config.run.storage_path).expanduser().resolve() / config.run.name / "tensorboard")


def whole_dataset(shard):
    """The whole (small) set from Ray Data as an in-memory ``datasets.Dataset`` (Arrow, no row copies);
    every worker gets all of it in the same order, and the trainer's distributed sampler splits it."""
    import datasets
    import pyarrow as pa

    tables = list(shard.iter_batches(batch_format="pyarrow", batch_size=1024))
    return datasets.Dataset(pa.concat_tables(tables))


def fit(trainer, scratch: str) -> None:
    """Train, reporting checkpoints to Ray (``RayTrainReportCallback``); a rerun of the same run, or a
    restart after a worker failure, continues from Ray's latest checkpoint."""
    from ray.train.huggingface.transformers import prepare_trainer

    trainer = prepare_trainer(trainer)
    checkpoint = ray.train.get_checkpoint()
    try:
        if checkpoint is None:
            trainer.train()
        else:
            with checkpoint.as_directory() as ckpt:
                print(f"[train] resuming from checkpoint {checkpoint.path}", flush=True)
                trainer.train(resume_from_checkpoint=os.path.join(ckpt, "checkpoint"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
