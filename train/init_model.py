"""A randomly initialised model from a config and a tokenizer: the base of a run with no pre-trained
weights at hand (the tiny recipe on a laptop, a small model trained from scratch). Published like
any model stage, so later stages and eval read it as a model directory.

    python -m train init configs/my_init.yaml      # defaults: train/presets/init.yaml
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from core import progress
from core.adapters import local_path
from core.config import StrictModel, load_layered, pending_output, read_yaml
from core.errors import ConfigError
from core.run import PublishedRun

INIT_PRESET = Path(__file__).parent / "presets" / "init.yaml"


class InitModelConfig(StrictModel):
    output_dir: str = Field(description="Where the model and its tokenizer are published.")
    tokenizer: str = Field(description="A tokenizer directory (e.g. a prepare run's tokenizer/).")
    seed: int
    architecture: dict[str, Any] = Field(description="`config_class` (a transformers config class) and its "
                                                     "arguments; vocab_size comes from the tokenizer.")
    chat_template: str | None = Field(description="Set when the tokenizer has none (SFT and DPO render chats).")

    @field_validator("tokenizer")
    @classmethod
    def _tokenizer_dir(cls, path: str) -> str:
        if not pending_output(path) and not (Path(local_path(path)) / "tokenizer_config.json").is_file():
            raise ValueError(f"{path} is not a tokenizer directory (no tokenizer_config.json)")
        return path

    @field_validator("architecture")
    @classmethod
    def _known_config_class(cls, architecture: dict) -> dict:
        import transformers

        name = architecture.get("config_class")
        if not isinstance(name, str) or not hasattr(transformers, name):
            raise ValueError(f"config_class: {name!r} is not a transformers config class (e.g. LlamaConfig)")
        return architecture


def load_init_config(path: str | Path, overrides: dict | None = None) -> InitModelConfig:
    return load_layered(InitModelConfig, path, [read_yaml(INIT_PRESET)], overrides)


def build_initial_model(config: InitModelConfig, destination: Path) -> dict:
    """Model and tokenizer saved into ``destination``; returns their size."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(local_path(config.tokenizer), local_files_only=True)
    if tokenizer.eos_token_id is None:
        raise ConfigError(f"tokenizer: {config.tokenizer} has no eos_token; generation and packing need one")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # padding is masked out of every loss
    if not tokenizer.chat_template and config.chat_template:
        tokenizer.chat_template = config.chat_template
    arguments = {k: v for k, v in config.architecture.items() if k != "config_class"}
    model_config = getattr(transformers, config.architecture["config_class"])(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id,
        **arguments)
    torch.manual_seed(config.seed)
    model = AutoModelForCausalLM.from_config(model_config)
    model.save_pretrained(destination)
    tokenizer.save_pretrained(destination)
    return {"parameters": sum(p.numel() for p in model.parameters()), "vocab_size": len(tokenizer),
            "architecture": type(model).__name__}


def run_init_model(config: InitModelConfig, *, overwrite: bool = False) -> dict:
    run = PublishedRun(config.output_dir, config, "model init", overwrite=overwrite)
    if run.finished:
        return run.finished
    tokenizer_files = sorted(p for p in Path(local_path(config.tokenizer)).iterdir() if p.is_file())
    with run.writing(tokenizer_files) as partial:
        with run.timed("init"):
            run.manifest["summary"] = build_initial_model(config, partial)
    progress.summary(f"initialised {run.manifest['summary']['architecture']} with "
                     f"{run.manifest['summary']['parameters']:,} parameters in {run.folder}")
    return run.manifest
