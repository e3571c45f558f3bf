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


def start_deepspeed(config: TrainConfig) -> None:
    """DeepSpeed's communication layer on this process's group (Ray Train's, or benchmarks/gpu_check.py's
    single rank), before the trainer arguments; nothing when the run has no ZeRO."""
    if not config.deepspeed.enabled:
        return
    import deepspeed
    import deepspeed.ops

    if not config.scaling.use_gpu:
        # On CPU DeepSpeed builds its shared-memory all-reduce at every start, under torch's extension file
        # lock; a worker killed while holding it (a stalled run's teardown) left the lock behind, and every later
        # CPU run on the machine waited on it forever. Training never uses the op (inference_all_reduce only).
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    # DeepSpeed's comm layer adopts the process group Ray Train created (alone, it makes one from MASTER_ADDR, RANK,
    # WORLD_SIZE); without it, ZeRO-3's partitioned loading (zero.Init, before the trainer exists) sees one rank
    deepspeed.init_distributed(dist_backend="nccl" if config.scaling.use_gpu else "gloo")
