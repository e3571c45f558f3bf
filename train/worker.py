"""What every stage's ``train_loop_per_worker`` shares: its config, its local dirs, and the fit
that hands the trainer to Ray (``prepare_trainer``) and resumes from Ray's latest checkpoint."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import ray.train

from train.callbacks import callbacks
from train.config import TrainConfig


def worker_setup(config_dict: dict) -> tuple[TrainConfig, str]:
    """The validated config and this worker's scratch dir for the trainer's local checkpoints."""
    config = TrainConfig.model_validate(config_dict)
    rank = ray.train.get_context().get_world_rank()
    # per rank: each rank uploads its own files (DeepSpeed shards) into the same Ray checkpoint
    scratch = tempfile.mkdtemp(prefix=f"train-{config.run.name}-rank{rank}-")
    return config, scratch


def tensorboard_dir(config: TrainConfig) -> str:
    """TensorBoard event files go beside the Ray run in storage when it is a local path."""
    if "://" in config.run.storage_path:
        return os.path.join(tempfile.gettempdir(), "tensorboard", config.run.name)
    return str(Path(config.run.storage_path).expanduser().resolve() / config.run.name / "tensorboard")


def fit(trainer, scratch: str) -> None:
    from ray.train.huggingface.transformers import prepare_trainer

    trainer = prepare_trainer(trainer)
    checkpoint = ray.train.get_checkpoint()
    try:
        if checkpoint is None:
            trainer.train()
        else:
            # a rerun of the same run, or a restart after a worker failure: continue where it stopped
            with checkpoint.as_directory() as ckpt:
                print(f"[train] resuming from checkpoint {checkpoint.path}", flush=True)
                trainer.train(resume_from_checkpoint=os.path.join(ckpt, "checkpoint"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def local_dataset(shard):
    """A Ray Data shard streamed into an in-memory ``datasets.Dataset`` (Arrow, no row copies)."""
    import datasets
    import pyarrow as pa

    tables = list(shard.iter_batches(batch_format="pyarrow", batch_size=1024))
    return datasets.Dataset(pa.concat_tables(tables))


def run_whole_set_recipe(config_dict: dict, build_trainer) -> None:
    """The SFT and DPO loops: setup; data, the whole (small) set streamed in from Ray Data (the
    trainer's own sampler splits it between ranks); model and loop from ``build_trainer``; fit,
    which checkpoints and resumes."""
    config, scratch = worker_setup(config_dict)
    dataset = local_dataset(ray.train.get_dataset_shard("train"))
    trainer = build_trainer(config, dataset, scratch, callbacks(config, tensorboard_dir(config)))
    fit(trainer, scratch)
