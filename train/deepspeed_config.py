"""The DeepSpeed JSON, generated from the run's config (never a hand-maintained file).

Batch size, accumulation and clipping are written explicitly from the same config that
builds the trainer's arguments, so the two can never disagree; the optimizer and the
scheduler are left to transformers (warmup + cosine from the config).
"""
from __future__ import annotations

from train.config import TrainConfig


def _offload(device: str, nvme_path: str | None) -> dict:
    section: dict = {"device": device}
    if device == "nvme":
        section["nvme_path"] = nvme_path
    if device != "none":
        section["pin_memory"] = True
    return section


def deepspeed_config(config: TrainConfig) -> dict | None:
    ds = config.deepspeed
    if not ds.enabled:
        return None
    zero: dict = {"stage": ds.zero_stage}
    if ds.zero_stage >= 1:
        zero.update(overlap_comm=False, contiguous_gradients=True, reduce_bucket_size=5e7)
    if ds.zero_stage >= 1 and ds.offload_optimizer != "none":
        zero["offload_optimizer"] = _offload(ds.offload_optimizer, ds.nvme_path)
    if ds.zero_stage == 3:
        # save_model() must gather the partitioned weights into one loadable file
        zero["stage3_gather_16bit_weights_on_model_save"] = True
        if ds.offload_param != "none":
            zero["offload_param"] = _offload(ds.offload_param, ds.nvme_path)
    precision = config.run.precision
    return {
        "train_micro_batch_size_per_gpu": config.optim.per_device_batch_size,
        "gradient_accumulation_steps": config.optim.gradient_accumulation_steps,
        "train_batch_size": config.optim.per_device_batch_size
        * config.optim.gradient_accumulation_steps
        * config.scaling.num_workers,
        "gradient_clipping": config.optim.max_grad_norm,
        "bf16": {"enabled": precision == "bf16"},
        "fp16": {"enabled": precision == "fp16", "loss_scale": 0, "initial_scale_power": 16},
        "zero_optimization": zero,
        # transformers builds a torch optimizer; ZeRO offload may run it on the CPU copy
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
