"""Preference alignment with trl's DPOTrainer on the preference contract."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from core.config import StrictModel
from train.config import TrainConfig
from train.method import TrainingMethod


class DpoOptions(StrictModel):
    beta: float = Field(gt=0)
    reference: Literal["model", "lora"] = Field(
        description="`model`: a frozen copy of the start model; `lora`: the base with the adapter disabled."
    )
    loss_type: str
    review_status: list[str] | None = Field(
        None, description="Keep only pairs whose `review_status` is one of these; null keeps all."
    )


def check(config: TrainConfig) -> None:
    if config.dpo.reference == "lora" and config.model.finetune == "full":
        raise ValueError("dpo.reference: lora needs model.finetune lora or qlora")


def review_columns(config: TrainConfig) -> list[str]:
    return ["review_status"] if config.dpo.review_status is not None else []


def reviewed_pairs(ds, config: TrainConfig):
    """Only the pairs whose review status the config asks for (e.g. approved by an annotator)."""
    if config.dpo.review_status is None:
        return ds
    keep = set(config.dpo.review_status)
    return ds.filter(lambda row: row["review_status"] in keep).drop_columns(["review_status"])


def as_conversation(row: dict) -> dict:
    """Plain-text pairs become chat turns, so the tokenizer's chat template frames them as at inference."""
    return {
        "prompt": [{"role": "user", "content": row["prompt"]}],
        "chosen": [{"role": "assistant", "content": row["chosen"]}],
        "rejected": [{"role": "assistant", "content": row["rejected"]}],
    }


def build_trainer(config: TrainConfig, pairs, output_dir: str, callbacks=()) -> DPOTrainer:
    """``pairs``: prompt/chosen/rejected as chat turns (``as_conversation``)."""
    # trl only where a trainer is built: listing the stages (`python -m train --help`) stays fast
    from trl import DPOConfig, DPOTrainer

    from train.arguments import trainer_arguments
    from train.model import build_model, trl_trainer_parts

    # reference: a frozen copy of the start model, or with LoRA the same weights with the adapter off
    lora_reference = config.model.finetune != "full" and config.dpo.reference == "lora"
    # the arguments before the models: with ZeRO-3 they make DeepSpeed partition the weights as they load
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
        train_dataset=pairs,
        **trl_trainer_parts(config, callbacks),
    )


def train_loop_per_worker(config_dict: dict) -> None:
    import ray.train

    from train.worker import fit, setup_worker, whole_dataset

    # setup
    worker = setup_worker(config_dict)
    # data: the whole (small) set on every worker, as chat turns; the trainer's sampler splits it between ranks
    rows = whole_dataset(ray.train.get_dataset_shard("train"))
    pairs = rows.map(as_conversation, remove_columns=rows.column_names)
    # models (policy and reference) and trainer
    trainer = build_trainer(worker.config, pairs, worker.scratch, worker.callbacks)
    # fit (checkpoints to Ray every run.save_steps; resumes from the latest)
    fit(trainer, worker.scratch)


STAGE = TrainingMethod(
    name="dpo",
    summary="DPO on the preference contract (prompt, chosen, rejected)",
    input_columns=("prompt", "chosen", "rejected"),
    train_loop_per_worker=train_loop_per_worker,
    options=DpoOptions,
    filter_columns=review_columns,
    select_rows=reviewed_pairs,
    check=check,
)
