"""Trainer arguments shared by every stage, from config (trl's SFTConfig/DPOConfig extend them)."""
from __future__ import annotations

from train.config import TrainConfig
from train.deepspeed_config import deepspeed_config


def trainer_arguments(config: TrainConfig, output_dir: str) -> dict:
    optim, run = config.optim, config.run
    return dict(
        output_dir=output_dir,
        max_steps=optim.max_steps,
        per_device_train_batch_size=optim.per_device_batch_size,
        gradient_accumulation_steps=optim.gradient_accumulation_steps,
        learning_rate=optim.learning_rate,
        lr_scheduler_type=optim.lr_scheduler,
        warmup_steps=optim.warmup_ratio,  # transformers 5: a float < 1 is a ratio of max_steps
        weight_decay=optim.weight_decay,
        max_grad_norm=optim.max_grad_norm,
        seed=optim.seed,
        bf16=run.precision == "bf16",
        fp16=run.precision == "fp16",
        use_cpu=not config.scaling.use_gpu,
        activation_checkpointing=config.model.gradient_checkpointing,
        deepspeed=deepspeed_config(config),
        logging_steps=run.logging_steps,
        save_strategy="steps",
        save_steps=run.save_steps,
        save_total_limit=1,  # the local copy; Ray storage keeps run.num_to_keep
        include_num_input_tokens_seen=True,
        report_to="none",  # TensorBoard and Ray callbacks are added explicitly, in order
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
