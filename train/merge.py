"""Model arithmetic after training: merge a LoRA adapter into its base, and chat vectors.

Chat vector (instruction residual): ``target + scale * (chat - base)``, tensor by tensor, gives
a continually pre-trained ``target`` the chat model's instruction following without SFT.
All three models must share the base's architecture and vocabulary.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from core.adapters import load_merged, local_path
from core.errors import ConfigError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "tokenizer.model", "vocab.json", "merges.txt")


def _require_dir(path: str, marker: str, what: str) -> Path:
    """The directory ``path`` names (a published output: its current run), which must hold ``marker``."""
    directory = Path(local_path(path))
    if not (directory / marker).is_file():
        raise ConfigError(f"{path}: not a {what} directory (no {marker})")
    return directory


def _copy_tokenizer(source: Path, output: Path) -> None:
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, output / name)


def merge_adapter(adapter: str, output: str, base: str | None = None) -> Path:
    """peft's merge_and_unload: the adapter's low-rank update is folded into the base weights."""
    from peft import PeftModel

    adapter_dir = _require_dir(adapter, "adapter_config.json", "LoRA adapter")
    if base:
        model = PeftModel.from_pretrained(load_merged(base), adapter_dir).merge_and_unload()
    else:
        model = load_merged(str(adapter_dir))  # its base, or the chain of adapters down to a full model
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    _copy_tokenizer(adapter_dir, out)
    return out


def chat_vector(base: str, chat: str, target: str, output: str, scale: float = 1.0) -> Path:
    from transformers import AutoModelForCausalLM

    paths = {name: _require_dir(p, "config.json", "model") for name, p in
             (("base", base), ("chat", chat), ("target", target))}
    models = {name: AutoModelForCausalLM.from_pretrained(p, dtype=torch.float32) for name, p in paths.items()}
    # named_parameters lists a tied weight once, so its delta is added once
    base_sd, chat_sd = dict(models["base"].named_parameters()), dict(models["chat"].named_parameters())
    result = models["target"]
    with torch.no_grad():
        for name, weight in result.named_parameters():
            if name not in base_sd or name not in chat_sd or base_sd[name].shape != weight.shape \
                    or chat_sd[name].shape != weight.shape:
                raise ConfigError(f"chat-vector: parameter {name} differs in name or shape between the models "
                                  "(they must share one base architecture and vocabulary)")
            weight.add_(scale * (chat_sd[name] - base_sd[name]))
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    result.save_pretrained(out)
    # the chat model's tokenizer carries its chat template
    _copy_tokenizer(paths["chat"], out)
    # the exact versions read (a published output's run folder), which a later run does not change
    inputs = {name: str(path.resolve()) for name, path in paths.items()}
    (out / "chat_vector.json").write_text(json.dumps({**inputs, "scale": scale}, indent=2) + "\n")
    return out
