"""What a training run will do, in words, for ``--print-config``: the batch, the schedule, and the memory plan
when the model's config can be read (its weights never are)."""
from __future__ import annotations

from train.config import TrainConfig


def train_plan(config: TrainConfig) -> list[str]:
    optim, scaling, ds = config.optim, config.scaling, config.deepspeed
    rows_per_step = optim.per_device_batch_size * optim.gradient_accumulation_steps * scaling.num_workers
    lines = [
        f"{config.stage} of {config.model.path} ({config.model.finetune}) on {config.data.train}",
        f"{optim.max_steps} optimizer step(s) of {rows_per_step} rows ({optim.per_device_batch_size} per device x "
        f"{optim.gradient_accumulation_steps} accumulation x {scaling.num_workers} worker(s)), "
        f"{config.data.max_length} tokens each",
        f"{scaling.num_workers} {'GPU' if scaling.use_gpu else 'CPU'} worker(s), "
        + (f"DeepSpeed ZeRO-{ds.zero_stage}" if ds.enabled else "torch DDP") + f", {config.run.precision}",
        f"checkpoints every {config.run.save_steps} step(s) in {config.run.storage_path}/{config.run.name} "
        f"(a rerun resumes); the model is published to {config.output_dir}",
    ]
    try:
        from train.plan import describe, plan_memory

        lines += describe(plan_memory(config), config).splitlines()
    except (OSError, ValueError) as exc:  # the model is an earlier step's output, or not readable yet
        lines.append(f"memory plan: not estimated ({str(exc).splitlines()[0]})")
    return lines
