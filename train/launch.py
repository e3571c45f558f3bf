"""The driver: check inputs, start or join Ray, run the stage's TorchTrainer, publish the model.

Reads top to bottom: checks (before any work), Ray, the trainer (scaling, storage, checkpoints,
failures, datasets), the fit, and the atomic publication of the final model with its manifest.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from core import progress
from core.adapters import is_adapter, published_path
from core.cluster_shape import gang_requested, refuse_unplaceable, running_cluster_offer
from core.errors import ConfigError, StalledError
from core.job_variables import JobVariable
from core.storage import is_uri, locate
from core.publish import published_run_ref
from core.ray_runtime import cpus_left_for_data, init_ray
from core.run import PublishedRun
from core.watchdog import HeartbeatWatch
from train.config import TrainConfig
from train.data import datasets_to_split, input_files, train_dataset
from train.heartbeat import heartbeat_file
from train.plan import check_plan_fits
from train.method import TrainingMethod
from train.methods import get_stage

HEALTH_CHECK_INTERVAL = JobVariable("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S")
# Trainer-only state: the published model is what the next stage or `merge` loads.
NOT_PUBLISHED = ("global_step", "optimizer.pt", "scheduler.pt", "rng_state", "latest", "zero_to_fp32.py", "zero_to_torch.py",
                 "training_args.bin")


def check_chat_template(config: TrainConfig) -> None:
    from train.model import build_tokenizer

    try:
        tokenizer = build_tokenizer(config.model)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model.tokenizer: cannot load {config.model.tokenizer or config.model.path}: {exc}") from None
    if not tokenizer.chat_template:
        raise ConfigError(f"model.tokenizer: {config.model.tokenizer or config.model.path} has no chat template, "
                          f"which {config.stage} needs to render conversations")


def check_room_for_data(config: TrainConfig) -> None:
    """Ray Data reads the input on the same Ray as the training workers. On a local Ray whose CPUs all go
    to the workers no read task is ever scheduled and the run hangs silently: refuse that plan now.
    (A cluster given by address may autoscale, so its plan is left to the autoscaler.)"""
    scaling = config.scaling
    per_worker = scaling.resources_per_worker.get("CPU", 1)  # Ray Train's default: 1 CPU per worker
    left = cpus_left_for_data(config.ray, scaling.num_workers * per_worker)
    if left is not None and left < 1:
        total = round(left + scaling.num_workers * per_worker)
        raise ConfigError(
            f"scaling: {scaling.num_workers} worker(s) x {per_worker:g} CPU take {scaling.num_workers * per_worker:g} "
            f"of the local Ray's {total} CPUs, leaving none for Ray Data to read data.train: the run would hang. "
            f"Give each worker less (scaling.resources_per_worker: {{CPU: {max(0.25, (total - 1) / scaling.num_workers):g}}}), "
            "use fewer workers, or a larger local Ray (ray.num_cpus)")


def worker_shape(config: TrainConfig) -> dict[str, float]:
    """What one training worker asks Ray for: its resources_per_worker, with Ray Train's defaults (1 CPU, and 1
    GPU with use_gpu) where it names none."""
    scaling = config.scaling
    return {"CPU": 1.0, **({"GPU": 1.0} if scaling.use_gpu else {}), **scaling.resources_per_worker}


def start_ray(config: TrainConfig) -> None:
    from ray.data import DataContext

    init_ray(config.ray)
    DataContext.get_current().enable_progress_bars = False
    apply_controller_settings(config)


def apply_controller_settings(config: TrainConfig) -> None:
    """Ray Train's controller takes its poll interval from the driver's environment at each fit (Ray passes
    the variable on to the controller actor), so each run of a process, and each step of a recipe, has its own."""
    HEALTH_CHECK_INTERVAL.apply(config.run.health_check_interval_s)


def storage_uri(config: TrainConfig) -> str:
    path = config.run.storage_path
    return path if is_uri(path) else str(Path(path).expanduser().resolve())


def checkpoint_storage(config: TrainConfig) -> dict:
    """RunConfig's storage: a URI goes with our filesystem for it (the storage: section's endpoint and retries, the
    AWS_* variables first), which Ray hands to every worker; its path then loses the scheme, as Ray asks."""
    path = storage_uri(config)
    if not is_uri(path):
        return {"storage_path": path}
    location = locate(path, "run.storage_path")
    return {"storage_path": location.path, "storage_filesystem": location.filesystem}


def build_trainer(config: TrainConfig, stage: TrainingMethod):
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    scaling = config.scaling
    return TorchTrainer(
        stage.train_loop_per_worker,
        train_loop_config=config.model_dump(mode="json"),
        torch_config=TorchConfig(backend="nccl" if scaling.use_gpu else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=scaling.num_workers, use_gpu=scaling.use_gpu,
            resources_per_worker=scaling.resources_per_worker or None,
        ),
        run_config=RunConfig(
            name=config.run.name,
            **checkpoint_storage(config),
            checkpoint_config=CheckpointConfig(num_to_keep=config.run.num_to_keep),
            failure_config=FailureConfig(max_failures=config.run.max_failures),
            # Ray Train's own INFO lines (resources requested, worker group started) only with -v: they are
            # still in the session's train logs; warnings and errors always show
            logging_config=LoggingConfig(log_level="INFO" if progress.verbosity() >= progress.VERBOSE else "WARNING"),
        ),
        datasets={"train": train_dataset(config, stage)},
        dataset_config=DataConfig(datasets_to_split=datasets_to_split(stage)),
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


def copy_model(checkpoint, destination: Path) -> dict:
    """The last checkpoint's model (not its optimizer state) into ``destination``; returns the training summary."""
    with checkpoint.as_directory() as ckpt:
        source = Path(ckpt) / "checkpoint"
        for item in source.iterdir():
            if item.name.startswith(NOT_PUBLISHED):
                continue
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, destination / item.name)
    state_file = destination / "trainer_state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    return summarize(state.get("log_history", []))


def name_start_model_as_base(adapter_dir: Path, start_model: str) -> None:
    """Name, as the adapter's base, the published version of the model it was trained on, as any machine finds
    it: peft records the folder it loaded, which for a model on object storage is this node's local copy. A LoRA
    trained on a model that was itself an adapter merged into its base (DPO on the SFT adapter) is relative to
    that merge: the start adapter is named, and eval and the next stage rebuild the same weights (adapter chains
    are merged in order when loaded). Named by its run's own folder: the version trained on, which a later run
    does not replace."""
    config_file = adapter_dir / "adapter_config.json"
    adapter_config = json.loads(config_file.read_text())
    adapter_config["base_model_name_or_path"] = published_path(start_model)
    config_file.write_text(json.dumps(adapter_config, indent=2))


def fit_watched(trainer, config: TrainConfig, stage_name: str):
    """``trainer.fit()`` under the stall watchdog: no step finished for ``run.stall_timeout_s`` (a data
    pipeline waiting for CPUs, a hung collective, a worker that never starts) is a StalledError naming the run."""
    heartbeat = heartbeat_file(config)
    if heartbeat is None:
        progress.warn("run.storage_path is remote: the stall watchdog (a local heartbeat file) is off")
        return trainer.fit()
    heartbeat.unlink(missing_ok=True)  # a previous attempt's beat is not progress of this one
    stage = f"train {stage_name} (run {config.run.name})"
    with HeartbeatWatch(heartbeat, config.run.stall_timeout_s, stage) as watch:
        try:
            return trainer.fit()
        except BaseException:
            if watch.fired:
                raise StalledError(watch.fired) from None
            raise


def run_training(config: TrainConfig, *, overwrite: bool = False, force: bool = False) -> dict:
    stage = get_stage(config.stage)
    # checks, before Ray starts
    check_plan_fits(config, force)
    files = input_files(config, stage)
    if stage.needs_chat_template:
        check_chat_template(config)
    check_room_for_data(config)
    # lineage: the model's manifest names the dataset and model runs it was made from, and the same
    # config on a newer dataset or base model trains again
    lineage = {"trained_on": published_run_ref(config.data.train), "model_from": published_run_ref(config.model.path)}
    run = PublishedRun(config.output_dir, config, f"{stage.name} run", overwrite=overwrite,
                       upstream={k: v for k, v in lineage.items() if v is not None})
    if run.finished:
        return run.finished
    with run.writing([locate(f, "data.train") for f in files]) as partial:  # remote: size and date, not a hash
        # Ray and the trainer
        with run.timed("ray_init"):
            start_ray(config)
        offer = running_cluster_offer()
        shape = worker_shape(config)
        refuse_unplaceable(shape, "scaling.resources_per_worker", offer)  # in seconds, not after stall_timeout_s
        with run.timed("fit"), gang_requested([shape] * config.scaling.num_workers, offer):
            result = fit_watched(build_trainer(config, stage), config, stage.name)
        if result.checkpoint is None:
            raise RuntimeError(f"run {config.run.name} finished without a checkpoint (run.save_steps > optim.max_steps?)")
        # the model, without optimizer state, is published with the manifest
        run.manifest.update(storage=storage_uri(config), checkpoint=result.checkpoint.path, stage=stage.name)
        run.manifest["summary"] = copy_model(result.checkpoint, partial)
        if is_adapter(partial) and (is_adapter(config.model.path) or is_uri(published_path(config.model.path))):
            name_start_model_as_base(partial, config.model.path)
    progress.summary(f"{stage.name} done: model in {run.folder}; summary {json.dumps(run.manifest['summary'])}")
    return run.manifest
