"""Continual pre-training on packed Parquet: streamed shards, per-document attention, plain HF Trainer."""
from __future__ import annotations

import ray.train
from ray.data.collate_fn import NumpyBatchCollateFn
from transformers import Trainer, TrainingArguments

from train.arguments import trainer_arguments
from train.callbacks import callbacks
from train.model import apply_lora, build_model, build_tokenizer
from train.packing import packed_batch
from train.worker import fit, tensorboard_dir, worker_setup


class PackedCollate(NumpyBatchCollateFn):
    """Packed rows -> model inputs inside Ray Data's iterator (a callable class, as Ray Data asks)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch):
        return packed_batch(batch, self.pad_id)


def train_loop_per_worker(config_dict: dict) -> None:
    config, scratch = worker_setup(config_dict)
    # data: this worker's disjoint shard, streamed and collated by Ray Data
    tokenizer = build_tokenizer(config.model)
    shard = ray.train.get_dataset_shard("train")
    batches = shard.iter_torch_batches(
        batch_size=config.optim.per_device_batch_size,
        collate_fn=PackedCollate(tokenizer.pad_token_id),
        drop_last=True,
    )
    # model
    model = apply_lora(build_model(config), config)
    # loop + checkpoints
    trainer = Trainer(
        model=model,
        args=TrainingArguments(**trainer_arguments(config, scratch)),
        train_dataset=batches,
        processing_class=tokenizer,
        callbacks=callbacks(config, tensorboard_dir(config)),
    )
    fit(trainer, scratch)
