"""The train job's config: pydantic models loaded from YAML on top of presets.

Numbers (learning rates, LoRA rank, DPO beta, ...) live in presets: ``train/presets/base.yaml``
for every stage, then the stage's own ``train/methods/<stage>.yaml``; the user's file has the
last word. A stage's own options sit in a section named after it (``dpo:``), typed by the stage
module. Problems that would only show up on the workers (QLoRA on CPU, a missing model
directory) are raised here, before Ray starts.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, create_model, model_validator

from core.adapters import ADAPTER_CONFIG, local_path
from core.config import StrictModel, load_layered, pending_output, read_yaml
from core.errors import ConfigError
from core.ray_runtime import RayConfig

BASE_PRESET = Path(__file__).parent / "presets" / "base.yaml"


class LoraConfig(StrictModel):
    r: int = Field(gt=0)
    alpha: int = Field(gt=0)
    dropout: float = Field(ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"]


class ModelConfig(StrictModel):
    path: str = Field(description="Local model directory (e.g. the previous stage's output) or a hub id.")
    tokenizer: str | None = Field(None, description="Tokenizer directory or hub id; defaults to `path`.")
    finetune: Literal["full", "lora", "qlora"]
    lora: LoraConfig
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"]
    gradient_checkpointing: bool


class DataConfig(StrictModel):
    train: str = Field(description="Parquet file or directory in the stage's contract (packed CPT, SFT, preference).")
    max_length: int = Field(gt=0, description="Tokens per sequence (SFT/DPO truncation and SFT packing length).")


class OptimConfig(StrictModel):
    learning_rate: float = Field(gt=0)
    lr_scheduler: str
    warmup_ratio: float = Field(ge=0, lt=1)
    weight_decay: float = Field(ge=0)
    max_grad_norm: float = Field(gt=0)
    per_device_batch_size: int = Field(gt=0)
    gradient_accumulation_steps: int = Field(gt=0)
    max_steps: int = Field(gt=0, description="Optimizer steps; streamed data needs a fixed length.")
    seed: int


class DeepSpeedConfig(StrictModel):
    enabled: bool
    zero_stage: Literal[0, 1, 2, 3]
    offload_optimizer: Literal["none", "cpu", "nvme"]
    offload_param: Literal["none", "cpu", "nvme"]
    nvme_path: str | None = None

    @model_validator(mode="after")
    def _offload_is_possible(self):
        if self.offload_param != "none" and self.zero_stage != 3:
            raise ValueError("offload_param needs zero_stage 3")
        if self.offload_optimizer != "none" and self.zero_stage < 1:
            raise ValueError("offload_optimizer needs zero_stage >= 1")
        if "nvme" in (self.offload_optimizer, self.offload_param) and not self.nvme_path:
            raise ValueError("nvme offload needs nvme_path")
        return self


class ScalingConfig(StrictModel):
    num_workers: int = Field(gt=0)
    use_gpu: bool
    resources_per_worker: dict[str, float]


class RunConfig(StrictModel):
    name: str = Field(description="Run name: a rerun with the same name and storage_path resumes.")
    storage_path: str = Field(description="Where Ray Train keeps checkpoints: a local path or a cloud URI.")
    precision: Literal["bf16", "fp16", "fp32"]
    save_steps: int = Field(gt=0)
    num_to_keep: int | None = Field(gt=0)
    max_failures: int = Field(ge=-1)
    logging_steps: int = Field(gt=0)
    peak_tflops_per_worker: float | None = Field(
        None, description="Accelerator peak TFLOP/s for MFU; null guesses from the GPU name (GPU only)."
    )
    stall_timeout_s: float | None = Field(gt=0, description="Fail the run, naming it, when no training step "
                                                          "finishes for this long (start-up included); null: never.")
    health_check_interval_s: float = Field(
        gt=0, description="How often Ray Train's controller polls the workers (RAY_TRAIN_HEALTH_CHECK_INTERVAL_S, "
                          "unless the job's environment sets it): a finished or failed run is noticed within a few "
                          "polls. Each poll is one call per worker.")


class PlanConfig(StrictModel):
    """What `python -m train plan` (and every GPU run, first) checks the memory estimate against."""

    gpu_memory_gb: float | None = Field(gt=0, description="Memory of each GPU (e.g. 80 for an A100 80GB); "
                                                          "null: the fit is not checked.")
    overhead_gb: float = Field(ge=0, description="CUDA context, allocator and library buffers per GPU.")
    seq_len: int | None = Field(gt=0, description="Tokens per sequence to plan for; null: data.max_length.")


class TrainConfig(StrictModel):
    """The sections every stage has; ``config_model`` adds the stage's own."""

    stage: str
    output_dir: str = Field(description="Where the final model (or LoRA adapter) is published.")
    model: ModelConfig
    data: DataConfig
    optim: OptimConfig
    deepspeed: DeepSpeedConfig
    scaling: ScalingConfig
    run: RunConfig
    plan: PlanConfig
    ray: RayConfig = RayConfig()

    @model_validator(mode="after")
    def _consistent(self):
        if self.model.finetune == "qlora" and not self.scaling.use_gpu:
            raise ValueError("model.finetune: qlora needs 4-bit bitsandbytes kernels, which need a GPU "
                             "(set scaling.use_gpu: true, or use finetune: lora on CPU)")
        if self.run.precision == "fp16" and not self.scaling.use_gpu:
            raise ValueError("run.precision: fp16 needs a GPU (use bf16 or fp32 on CPU)")
        return self


@lru_cache(maxsize=None)
def config_model(stage: str) -> type[TrainConfig]:
    """TrainConfig plus the stage's own section, typed by its module (``dpo: DpoOptions``)."""
    from train.methods import get_stage  # the registry imports the stage modules, which import this one

    options = get_stage(stage).options
    if options is None:
        return TrainConfig
    return create_model(f"{stage.title()}TrainConfig", __base__=TrainConfig, **{stage: (options, ...)})


def load_train_config(path: str | Path, stage: str, overrides: dict | None = None, check_inputs: bool = True) -> TrainConfig:
    """Preset ``base`` + the stage's preset + the user's YAML (+ CLI overrides), checked before Ray starts."""
    from train.methods import get_stage, stage_preset

    spec = get_stage(stage)

    def presets(user: dict) -> list[dict]:
        if user.get("stage", stage) != stage:
            raise ConfigError(f"{path}: stage: the file is for {user['stage']!r}, not {stage!r}")
        return [read_yaml(BASE_PRESET), read_yaml(stage_preset(stage))]

    config = load_layered(config_model(stage), path, presets, {**(overrides or {}), "stage": stage})
    if check_inputs:
        check_paths(config, str(path))
    if spec.check is not None:
        try:
            spec.check(config)
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return config


def worker_config(config_dict: dict) -> TrainConfig:
    """The config a Ray Train worker receives as a plain dict, validated again with its stage's section."""
    return config_model(config_dict["stage"]).model_validate(config_dict)


def looks_local(path: str) -> bool:
    """A path we can check (a local one or a URI, copied to local disk to look inside), not a hub id."""
    return "://" in path or path.startswith((".", "/", "~")) or Path(path).exists()


def _is_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file() or (path / ADAPTER_CONFIG).is_file()


def check_paths(config: TrainConfig, source: str) -> None:
    """A missing local model or data path is named now, not in a worker's traceback. A published output
    (an earlier stage's ``output_dir``, ``<prepare>/train``) is checked in its current run."""
    model = config.model
    if looks_local(model.path) and not pending_output(model.path) and not _is_model_dir(Path(local_path(model.path))):
        raise ConfigError(f"{source}: model.path: {model.path} is not a model directory (no config.json)")
    if model.tokenizer and looks_local(model.tokenizer) and not pending_output(model.tokenizer) \
            and not Path(local_path(model.tokenizer)).is_dir():
        raise ConfigError(f"{source}: model.tokenizer: {model.tokenizer} is not a directory")
    if "://" not in config.data.train and not pending_output(config.data.train) \
            and not Path(local_path(config.data.train)).exists():
        raise ConfigError(f"{source}: data.train: {config.data.train} does not exist")
