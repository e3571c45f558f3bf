"""Preference alignment with trl's DPOTrainer on the preference contract."""
from __future__ import annotations

from trl import DPOConfig, DPOTrainer

from train.arguments import trainer_arguments
from train.config import TrainConfig
from train.model import build_model, build_peft_config, build_tokenizer
from train.worker import run_whole_set_recipe


def as_conversation(row: dict) -> dict:
    """Plain-text pairs become chat turns, so the tokenizer's chat template frames them as at inference."""
    return {
        "prompt": [{"role": "user", "content": row["prompt"]}],
        "chosen": [{"role": "assistant", "content": row["chosen"]}],
        "rejected": [{"role": "assistant", "content": row["rejected"]}],
    }


def build_dpo_trainer(config: TrainConfig, dataset, output_dir: str, extra_callbacks=()) -> DPOTrainer:
    # reference: a frozen copy of the start model, or with LoRA the same weights with the adapter off
    lora_reference = config.model.finetune != "full" and config.dpo.reference == "lora"
    args = DPOConfig(
        **trainer_arguments(config, output_dir),
        beta=config.dpo.beta,
        loss_type=[config.dpo.loss_type],
        max_length=config.data.max_length,
    )
    return DPOTrainer(
        model=build_model(config),
        ref_model=None if lora_reference else build_model(config),
        args=args,
        train_dataset=dataset.map(as_conversation, remove_columns=dataset.column_names),
        processing_class=build_tokenizer(config.model),
        peft_config=build_peft_config(config),
        callbacks=list(extra_callbacks),
    )


def train_loop_per_worker(config_dict: dict) -> None:
    run_whole_set_recipe(config_dict, build_dpo_trainer)
