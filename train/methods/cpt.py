"""Continual pre-training on packed Parquet: streamed shards, per-document attention, transformers' Trainer."""
from __future__ import annotations

from ray.data.collate_fn import NumpyBatchCollateFn

from core.contracts import PACKED_CPT_INPUTS
from train.method import TrainingMethod


class PackedCollate(NumpyBatchCollateFn):
    """Packed rows -> model inputs inside Ray Data's iterator (a callable class, as Ray Data asks)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch):
        from train.document_attention import packed_batch

        return packed_batch(batch, self.pad_id)


def train_loop_per_worker(config_dict: dict) -> None:
    # the training libraries only on the workers: listing the stages (`python -m train --help`) stays fast
    import ray.train
    from transformers import Trainer, TrainingArguments

    from train.arguments import trainer_arguments
    from train.model import apply_lora, build_model, build_tokenizer
    from train.worker import fit, setup_worker

    # setup
    worker = setup_worker(config_dict)
    config = worker.config
    tokenizer = build_tokenizer(config.model)
    # data: this worker's disjoint shard, streamed and collated by Ray Data
    batches = ray.train.get_dataset_shard("train").iter_torch_batches(
        batch_size=config.optim.per_device_batch_size,
        collate_fn=PackedCollate(tokenizer.pad_token_id),
        drop_last=True,
    )
    # trainer arguments before the model: with ZeRO-3 they make DeepSpeed partition the weights as they load
    args = TrainingArguments(**trainer_arguments(config, worker.scratch))
    # model
    model = apply_lora(build_model(config), config)
    # trainer, fit (checkpoints to Ray every run.save_steps; resumes from the latest)
    trainer = Trainer(model=model, args=args, train_dataset=batches, processing_class=tokenizer,
                      callbacks=worker.callbacks)
    fit(trainer, worker.scratch)


STAGE = TrainingMethod(
    name="cpt",
    summary="continual pre-training on the factory's packed Parquet (input_ids, doc_lengths)",
    input_columns=tuple(PACKED_CPT_INPUTS.names),
    train_loop_per_worker=train_loop_per_worker,
    shard_per_worker=True,
    needs_chat_template=False,
)
