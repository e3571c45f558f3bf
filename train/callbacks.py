"""Trainer callbacks: throughput and MFU in the logs, TensorBoard files, Ray reporting, a heartbeat for the watchdog.

Order matters: the throughput callback adds its numbers to the shared ``logs`` dict before
TensorBoard writes it, and Ray's callback reports the log history with each checkpoint.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from transformers import TrainerCallback
from transformers.integrations import TensorBoardCallback

from train.config import TrainConfig
from train.heartbeat import heartbeat_file

# dense bf16 peak TFLOP/s per device, for MFU when the config does not give one
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "L4": 121.0}


def peak_tflops(config: TrainConfig) -> float | None:
    if config.run.peak_tflops_per_worker:
        return config.run.peak_tflops_per_worker
    if not torch.cuda.is_available():
        return None  # MFU is only meaningful against an accelerator's peak
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


class ThroughputCallback(TrainerCallback):
    """tokens/s from the trainer's global token count; MFU as 6*N*tokens/s over the workers' peak."""

    def __init__(self, config: TrainConfig):
        self.peak = peak_tflops(config)
        self.world = config.scaling.num_workers
        self.last: tuple[float, int] | None = None
        self.n_params = 0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is not None:
            # ZeRO-3 partitions parameters; ds_numel is the full size, ds_tensor this rank's partition
            params = list(model.parameters())
            self.n_params = sum(getattr(p, "ds_numel", p.numel()) for p in params)
            if params and hasattr(params[0], "ds_tensor"):
                held = sum(p.ds_tensor.numel() for p in params)
                print(f"[train] ZeRO-3: rank {args.process_index} holds {held} of {self.n_params} parameters",
                      flush=True)
        self.last = (time.perf_counter(), state.num_input_tokens_seen)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or self.last is None or "loss" not in logs:
            return
        (then, seen), now, tokens = self.last, time.perf_counter(), state.num_input_tokens_seen
        self.last = (now, tokens)
        if now <= then:
            return
        extra = {"tokens_per_s": (tokens - seen) / (now - then)}
        if self.peak and self.n_params:
            extra["mfu"] = 6 * self.n_params * extra["tokens_per_s"] / (self.peak * 1e12 * self.world)
        logs.update(extra)
        if state.log_history:
            state.log_history[-1].update(extra)


class AttemptStartCallback(TrainerCallback):
    """Says on rank 0 which step an attempt starts at, and its learning rate: after a failure or a rerun the
    log shows training continued from the checkpoint (step + 1, schedule where it was), not from step 1."""

    def __init__(self):
        self.said = False

    def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
        if not self.said and args.process_index == 0:
            self.said = True
            rate = lr_scheduler.get_last_lr()[0] if lr_scheduler is not None else float("nan")
            print(f"[train] first step of this attempt: {state.global_step} (learning rate after it {rate:.6g})",
                  flush=True)


class HeartbeatCallback(TrainerCallback):
    """Rank 0 rewrites the heartbeat file at the start and after every step; the driver's watchdog
    (core.watchdog.HeartbeatWatch) fails the run, naming it, when the file stops changing."""

    def __init__(self, path: Path):
        self.path = path

    def beat(self, args, state, what: str) -> None:
        if args.process_index == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(f"{what} at step {state.global_step}, {time.strftime('%H:%M:%S')}\n")

    def on_train_begin(self, args, state, control, **kwargs):
        self.beat(args, state, "training started")

    def on_step_end(self, args, state, control, **kwargs):
        self.beat(args, state, "step done")


def callbacks(config: TrainConfig, tensorboard_dir: str) -> list[TrainerCallback]:
    from ray.train.huggingface.transformers import RayTrainReportCallback
    from torch.utils.tensorboard import SummaryWriter

    found = [ThroughputCallback(config), AttemptStartCallback()]
    if heartbeat_file(config) is not None:
        found.append(HeartbeatCallback(heartbeat_file(config)))
    if int(os.environ.get("RANK", "0")) == 0:
        found.append(TensorBoardCallback(SummaryWriter(log_dir=tensorboard_dir)))
    found.append(RayTrainReportCallback())
    return found
