"""LoRA adapters on disk, shared by train and eval: an adapter directory names its base model, and that base
may itself be an adapter (DPO trained on the SFT adapter merged into the CPT model). Loading follows the
chain and merges each adapter into its base, in order, as training did."""
from __future__ import annotations

import json
from pathlib import Path

ADAPTER_CONFIG = "adapter_config.json"
MAX_CHAIN = 16  # adapters naming each other in a cycle must not loop forever


def is_adapter(path: str | Path) -> bool:
    return (Path(path).expanduser() / ADAPTER_CONFIG).is_file()


def named_base(adapter: str | Path) -> str:
    return json.loads((Path(adapter).expanduser() / ADAPTER_CONFIG).read_text())["base_model_name_or_path"]


def model_chain(path: str) -> list[str]:
    """``path`` and, while it is an adapter, the base it names: the directories whose weights make the model;
    the last one holds the full model (or is a hub id)."""
    chain = [path]
    while is_adapter(chain[-1]) and len(chain) < MAX_CHAIN:
        chain.append(named_base(chain[-1]))
    return chain


def load_merged(path: str, **kwargs):
    """The causal LM at ``path``, every adapter of its chain merged into its base (``kwargs`` go to
    ``from_pretrained`` of the full model at the chain's end)."""
    from transformers import AutoModelForCausalLM

    if not is_adapter(path):
        return AutoModelForCausalLM.from_pretrained(path, **kwargs)
    from peft import PeftModel

    return PeftModel.from_pretrained(load_merged(named_base(path), **kwargs), path).merge_and_unload()
