"""Supervised fine-tuning with trl's SFTTrainer: chat template, loss on assistant tokens, packing."""
from __future__ import annotations

from trl import SFTConfig, SFTTrainer

from train.arguments import trainer_arguments
from train.config import TrainConfig
from train.model import build_model, build_peft_config, build_tokenizer
from train.worker import run_whole_set_recipe


def build_sft_trainer(config: TrainConfig, dataset, output_dir: str, extra_callbacks=()) -> SFTTrainer:
    """trl does the work: chat template, assistant-only labels (``{% generation %}`` spans), packing."""
    args = SFTConfig(
        **trainer_arguments(config, output_dir),
        assistant_only_loss=True,
        packing=config.data.packing,
        max_length=config.data.max_length,
    )
    return SFTTrainer(
        model=build_model(config),
        args=args,
        train_dataset=dataset.select_columns(["messages"]),
        processing_class=build_tokenizer(config.model),
        peft_config=build_peft_config(config),
        callbacks=list(extra_callbacks),
    )


def train_loop_per_worker(config_dict: dict) -> None:
    run_whole_set_recipe(config_dict, build_sft_trainer)
