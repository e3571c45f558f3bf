"""LoRA adapters on disk, shared by train and eval: an adapter directory names its base model, and that base
may itself be an adapter (DPO trained on the SFT adapter merged into the CPT model). Loading follows the
chain and merges each adapter into its base, in order, as training did.

A path may name a published output (``<out>``, or ``<out>/tokenizer``): it is read in the output's current
run (``core.publish.resolve``), never in ``<out>`` itself, which holds only versions and their pointer."""
from __future__ import annotations

import json
import os
from pathlib import Path

from core.local_copy import local_copy
from core.publish import resolve
from core.storage import is_uri

ADAPTER_CONFIG = "adapter_config.json"
MAX_CHAIN = 16  # adapters naming each other in a cycle must not loop forever


def local_path(path: str | Path) -> str:
    """``path`` as it is read: ``~`` expanded, a published output replaced by its current run's folder, and a
    URI (s3://...) by its copy on local disk (``core.local_copy``); a hub id or a plain directory comes back as
    it is."""
    resolved = str(resolve(os.path.expanduser(str(path))))
    return str(local_copy(resolved)) if is_uri(resolved) else resolved


def published_path(path: str | Path) -> str:
    """Where ``path`` is published, as another machine names it: a URI's current run (``s3://.../runs/<id>``),
    or a local path's current run folder, absolute. For recording what a model was made from."""
    resolved = str(resolve(os.path.expanduser(str(path))))
    return resolved if is_uri(resolved) else str(Path(resolved).resolve())


def is_adapter(path: str | Path) -> bool:
    return (Path(local_path(path)) / ADAPTER_CONFIG).is_file()


def named_base(adapter: str | Path) -> str:
    """The base ``adapter`` names, as recorded (a published output is resolved where it is read)."""
    return json.loads((Path(local_path(adapter)) / ADAPTER_CONFIG).read_text())["base_model_name_or_path"]


def model_chain(path: str) -> list[str]:
    """``path`` and, while it is an adapter, the base it names: the directories whose weights make the model
    (published outputs as their current runs); the last one holds the full model (or is a hub id)."""
    chain = [local_path(path)]
    while is_adapter(chain[-1]) and len(chain) < MAX_CHAIN:
        chain.append(local_path(named_base(chain[-1])))
    return chain


def load_merged(path: str, **kwargs):
    """The causal LM at ``path``, every adapter of its chain merged into its base (``kwargs`` go to
    ``from_pretrained`` of the full model at the chain's end)."""
    from transformers import AutoModelForCausalLM

    path = local_path(path)
    if not is_adapter(path):
        return AutoModelForCausalLM.from_pretrained(path, **kwargs)
    from peft import PeftModel

    return PeftModel.from_pretrained(load_merged(named_base(path), **kwargs), path).merge_and_unload()
