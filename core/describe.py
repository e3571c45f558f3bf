"""``--print-config``: a job's fully resolved config, each value with the layer it came from (a preset, the
user's file, the command line, or the model's default), then the job's plan, without running anything.

The text is YAML (sources and the plan are comments), so it can be saved and passed back as a config.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

import yaml
from pydantic import BaseModel

from core.config import layers_of


def value_sources(layers: list[tuple[str, dict]]) -> dict[tuple, str]:
    """{key path: label of the last layer that set it}, for every leaf of every layer (a list is one leaf)."""
    sources: dict[tuple, str] = {}
    for label, layer in layers:
        for path in _leaf_paths(layer):
            sources[path] = label
    return sources


def _leaf_paths(value: Any, prefix: tuple = ()) -> Iterable[tuple]:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from _leaf_paths(inner, (*prefix, key))
    elif prefix:
        yield prefix


def source_of(path: tuple, sources: dict[tuple, str]) -> str:
    """The layer that set ``path`` or the closest section above it (a whole section may come from one file);
    ``default`` when no layer did: the config model's own default, or a value derived from others."""
    for cut in range(len(path), 0, -1):
        if path[:cut] in sources:
            return sources[path[:cut]]
    return "default"


def describe_config(config: BaseModel, title: str, plan: list[str]) -> str:
    """The resolved config as YAML with ``# source`` on every value, then ``# plan:`` and its lines."""
    layers = layers_of(config)
    sources = value_sources(layers)
    lines = [f"# {title}", "# resolved from: " + " < ".join(label for label, layer in layers if layer) +
             " (each value says which; 'default' is the config model's own)"]
    lines += _render(config.model_dump(mode="json"), (), sources)
    lines += ["", "# plan:"] + [f"#   {line}" for line in plan]
    return "\n".join(lines)


def _render(section: dict, prefix: tuple, sources: dict[tuple, str], indent: str = "") -> list[str]:
    lines = []
    for key, value in section.items():
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            lines.append(f"{indent}{_flow(key)}:")
            lines += _render(value, path, sources, indent + "  ")
        elif isinstance(value, list) and value and all(isinstance(item, dict) and item for item in value):
            lines.append(f"{indent}{_flow(key)}:")  # a list of sections (factory sources): one block each
            for index, item in enumerate(value):
                block = _render(item, (*path, index), sources, indent + "    ")
                lines += [f"{indent}  - {block[0].lstrip()}", *block[1:]]
        else:
            line = f"{indent}{_flow(key)}: {_flow(value)}"
            lines.append(f"{line:<56} # {source_of(path, sources)}")
    return lines


def _flow(value: Any) -> str:
    """One line of YAML for a leaf: a scalar, or a list or text of many lines as JSON (which YAML reads)."""
    if isinstance(value, (list, dict)) or (isinstance(value, str) and "\n" in value):
        return json.dumps(value, ensure_ascii=False)
    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), allow_unicode=True)
    return text.strip().removesuffix("...").strip()  # a scalar document ends with "..."
