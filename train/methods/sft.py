"""Supervised fine-tuning with trl's SFTTrainer: chat template, loss on assistant tokens, packing."""
from __future__ import annotations

from pydantic import Field

from core.config import StrictModel
from train.config import TrainConfig
from train.method import TrainingMethod


class SftOptions(StrictModel):
    packing: bool = Field(description="Pack conversations into data.max_length blocks (trl's packing).")


def build_trainer(config: TrainConfig, dataset, output_dir: str, callbacks=()) -> SFTTrainer:
    """trl does the work: chat template, assistant-only labels (``{% generation %}`` spans), packing."""
    # trl only where a trainer is built: listing the stages (`python -m train --help`) stays fast
    from trl import SFTConfig, SFTTrainer

    from train.arguments import trainer_arguments
    from train.model import build_model, trl_trainer_parts

    # the arguments before the model: with ZeRO-3 they make DeepSpeed partition the weights as they load
    args = SFTConfig(
        **trainer_arguments(config, output_dir),
        assistant_only_loss=True,
        packing=config.sft.packing,
        max_length=config.data.max_length,
    )
    return SFTTrainer(
        model=build_model(config),
        args=args,
        train_dataset=dataset.select_columns(["messages"]),
        **trl_trainer_parts(config, callbacks),
    )


def train_loop_per_worker(config_dict: dict) -> None:
    # Ray only here: benchmarks/gpu_check.py builds this stage's trainer on a GPU machine without Ray
    import ray.train

    from train.worker import fit, setup_worker, whole_dataset

    # setup
    worker = setup_worker(config_dict)
    # data: the whole (small) set on every worker; the trainer's sampler splits it between ranks
    dataset = whole_dataset(ray.train.get_dataset_shard("train"))
    # model and trainer
    trainer = build_trainer(worker.config, dataset, worker.scratch, worker.callbacks)
    # fit (checkpoints to Ray every run.save_steps; resumes from the latest)
    fit(trainer, worker.scratch)


STAGE = TrainingMethod(
    name="sft",
    summary="supervised fine-tuning on the SFT contract (messages), loss on assistant tokens",
    input_columns=("messages",),
    train_loop_per_worker=train_loop_per_worker,
    options=SftOptions,
)
