"""A checkpoint to evaluate: a model directory, or a LoRA adapter on its base; loaded once per actor.
A checkpoint (or base, or tokenizer) that is a published output is read in its current run."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from core.adapters import ADAPTER_CONFIG, is_adapter, load_merged, local_path, model_chain, named_base
from core.errors import ConfigError
from eval.config import CheckpointConfig, ModelRuntimeConfig

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(path: str) -> bool:
    """``org/name`` that is not a local path: transformers fetches it from the hub (or its cache)."""
    return not Path(path).exists() and HUB_ID.match(path) is not None


def model_dir(checkpoint: CheckpointConfig) -> str:
    """The checkpoint's directory as read (a published output: its current run's folder), or its hub id."""
    return local_path(checkpoint.path)


def adapter_base(checkpoint: CheckpointConfig) -> str:
    """The base model an adapter applies to: the config's ``base``, else the one the adapter names. The base
    may itself be an adapter (DPO trained on the SFT adapter merged into its base): see ``core.adapters``."""
    return local_path(checkpoint.base or named_base(checkpoint.path))


def check_checkpoint(checkpoint: CheckpointConfig, key: str) -> None:
    """Before any work: the directory holds a model or an adapter, and an adapter's base exists."""
    path = Path(model_dir(checkpoint))
    if is_hub_id(checkpoint.path):
        return
    if not path.is_dir():
        raise ConfigError(f"{key}.path: {path} is not a directory (nor a hub id like org/name)")
    if is_adapter(str(path)):
        base = adapter_base(checkpoint)
        if not (Path(base) / "config.json").is_file() and not is_adapter(base) and not is_hub_id(base):
            raise ConfigError(f"{key}: LoRA adapter {path} needs its base model, but {base} holds no config.json "
                              f"(set {key}.base to the base model directory)")
    elif not (path / "config.json").is_file():
        raise ConfigError(f"{key}.path: {path} holds neither a model (config.json) nor a LoRA adapter "
                          f"({ADAPTER_CONFIG})")


def checkpoint_digest(checkpoint: CheckpointConfig) -> str:
    """sha256 over the checkpoint's files (names and contents; an adapter's base included), streamed.
    A hub id is named, not hashed: its files are not here until transformers fetches them."""
    digest = hashlib.sha256()
    roots = [model_dir(checkpoint)] + (model_chain(adapter_base(checkpoint)) if is_adapter(checkpoint.path) else [])
    for root in map(Path, roots):
        if is_hub_id(str(root)):
            digest.update(f"hub:{root}".encode())
            continue
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            digest.update(str(file.relative_to(root)).encode())
            with open(file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def tokenizer_dir(checkpoint: CheckpointConfig) -> str:
    if checkpoint.tokenizer:
        return local_path(checkpoint.tokenizer)
    if (Path(model_dir(checkpoint)) / "tokenizer_config.json").is_file() or not is_adapter(checkpoint.path):
        return model_dir(checkpoint)
    chain = model_chain(adapter_base(checkpoint))
    return next((d for d in chain if (Path(d) / "tokenizer_config.json").is_file()), chain[-1])


def load_tokenizer(checkpoint: CheckpointConfig):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir(checkpoint))
    if tokenizer.pad_token is None:  # padded positions are masked, so any id will do
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def device_for(runtime: ModelRuntimeConfig) -> str:
    import torch

    if runtime.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return runtime.device


def load_model(checkpoint: CheckpointConfig, runtime: ModelRuntimeConfig):
    """The causal LM in eval mode on its device; an adapter is applied to its base (not merged: the
    weights scored are exactly the adapter's)."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[runtime.dtype]
    if is_adapter(checkpoint.path):
        from peft import PeftModel

        model = PeftModel.from_pretrained(load_merged(adapter_base(checkpoint), dtype=dtype), model_dir(checkpoint))
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir(checkpoint), dtype=dtype)
    return model.to(device_for(runtime)).eval()


def configured_positions(checkpoint: CheckpointConfig) -> int | None:
    """The positions the checkpoint's model config allows, read from its config.json (an adapter's: its base's)
    without loading it; None for a hub id or a config that does not say."""
    for directory in model_chain(model_dir(checkpoint) if not is_adapter(checkpoint.path) else adapter_base(checkpoint)):
        config = Path(directory) / "config.json"
        if config.is_file():
            data = json.loads(config.read_text())
            return next((int(data[k]) for k in ("max_position_embeddings", "n_positions") if data.get(k)), None)
    return None


def check_context_length(checkpoint: CheckpointConfig, context_length: int | None, key: str) -> None:
    """An explicit perplexity window longer than the model's positions fails after the model loads (an index
    error for learned positions): refused before."""
    positions = configured_positions(checkpoint) if context_length else None
    if positions and context_length > positions:
        raise ConfigError(f"perplexity.context_length ({context_length}) is longer than {key}'s "
                          f"{positions} positions; lower it, or set it to null for each model's own")


def max_positions(model) -> int:
    config = getattr(model, "config", None)
    return int(getattr(config, "max_position_embeddings", 0) or 2048)
