"""The driver: check inputs, start or join Ray, run the stage's TorchTrainer, publish the model.

Reads top to bottom: checks (before any work), Ray, the trainer (scaling, storage, checkpoints,
failures, datasets), the fit, and the atomic publication of the final model with its manifest.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

from factory.common.config_loading import ConfigError, config_hash
from factory.common.job import announce_finished, check_output_dir, clear_stale_partials, init_ray
from factory.common.manifest import base_manifest, new_run_id
from factory.common.publish import MANIFEST, partial_dir, publish, write_json_atomically
from train.config import TrainConfig
from train.data import check_contract, split_datasets, train_dataset

# Trainer-only state: the published model is what the next stage or `merge` loads.
NOT_PUBLISHED = ("global_step", "optimizer.pt", "scheduler.pt", "rng_state", "latest", "zero_to_fp32.py", "zero_to_torch.py",
                 "training_args.bin")


def recipe(stage: str) -> Callable[[dict], None]:
    from train import cpt, dpo, sft

    return {"cpt": cpt, "sft": sft, "dpo": dpo}[stage].train_loop_per_worker


def check_tokenizer(config: TrainConfig) -> None:
    if config.stage == "cpt":
        return
    from train.model import build_tokenizer

    try:
        tokenizer = build_tokenizer(config.model)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model.tokenizer: cannot load {config.model.tokenizer or config.model.path}: {exc}") from None
    if not tokenizer.chat_template:
        raise ConfigError(f"model.tokenizer: {config.model.tokenizer or config.model.path} has no chat template, "
                          f"which {config.stage} needs to render conversations")


def start_ray(config: TrainConfig) -> None:
    from ray.data import DataContext

    init_ray(config.ray)
    DataContext.get_current().enable_progress_bars = False


def storage_uri(config: TrainConfig) -> str:
    path = config.run.storage_path
    return path if "://" in path else str(Path(path).expanduser().resolve())


def build_trainer(config: TrainConfig):
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    scaling = config.scaling
    return TorchTrainer(
        recipe(config.stage),
        train_loop_config=config.model_dump(mode="json"),
        torch_config=TorchConfig(backend="nccl" if scaling.use_gpu else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=scaling.num_workers, use_gpu=scaling.use_gpu,
            resources_per_worker=scaling.resources_per_worker or None,
        ),
        run_config=RunConfig(
            name=config.run.name,
            storage_path=storage_uri(config),
            checkpoint_config=CheckpointConfig(num_to_keep=config.run.num_to_keep),
            failure_config=FailureConfig(max_failures=config.run.max_failures),
        ),
        datasets={"train": train_dataset(config)},
        dataset_config=DataConfig(datasets_to_split=split_datasets(config)),
    )


def summarize(log_history: list[dict]) -> dict:
    losses = [e["loss"] for e in log_history if "loss" in e]
    speeds = [e["tokens_per_s"] for e in log_history if "tokens_per_s" in e]
    final = next((e for e in reversed(log_history) if "train_runtime" in e), {})
    summary = {
        "steps": max((e.get("step", 0) for e in log_history), default=0),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "mean_tokens_per_s": sum(speeds) / len(speeds) if speeds else None,
        "train_runtime_s": final.get("train_runtime"),
    }
    mfu = [e["mfu"] for e in log_history if "mfu" in e]
    if mfu:
        summary["mean_mfu"] = sum(mfu) / len(mfu)
    return summary


def publish_model(checkpoint, output_dir: Path, manifest: dict) -> dict:
    """Copy the last checkpoint's model (not its optimizer state) to output_dir, atomically."""
    partial = partial_dir(output_dir, manifest["run_id"])
    with checkpoint.as_directory() as ckpt:
        source = Path(ckpt) / "checkpoint"
        for item in source.iterdir():
            if item.name.startswith(NOT_PUBLISHED):
                continue
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, partial / item.name)
    state = json.loads((partial / "trainer_state.json").read_text()) if (partial / "trainer_state.json").exists() else {}
    manifest["summary"] = summarize(state.get("log_history", []))
    write_json_atomically(partial / MANIFEST, manifest)
    publish(partial, output_dir)
    return manifest


def run(config: TrainConfig, *, overwrite: bool = False, echo: Callable[[str], None] = print) -> dict:
    # checks, before Ray starts
    files = check_contract(config)
    check_tokenizer(config)
    output_dir = Path(config.run.output_dir).expanduser()
    digest = config_hash(config)
    finished = check_output_dir(output_dir, digest, overwrite, echo)
    if finished:
        announce_finished(output_dir, f"{config.stage} run", digest, finished, echo)
        return finished
    clear_stale_partials(output_dir, echo)
    manifest = base_manifest(new_run_id(), config, [Path(f) for f in files if "://" not in f])
    # Ray and the trainer
    start_ray(config)
    result = build_trainer(config).fit()
    if result.checkpoint is None:
        raise RuntimeError(f"run {config.run.name} finished without a checkpoint (run.save_steps > optim.max_steps?)")
    # publish
    manifest.update(storage=storage_uri(config), checkpoint=result.checkpoint.path, stage=config.stage)
    manifest = publish_model(result.checkpoint, output_dir, manifest)
    echo(f"{config.stage} done: model in {output_dir}; summary {json.dumps(manifest['summary'])}")
    return manifest
