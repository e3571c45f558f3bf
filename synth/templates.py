"""Versioned prompt templates, one YAML file each (``synth/prompts/<name>.yaml``).

A template has ``name``, ``version``, ``system``, ``user`` (``str.format`` fields such as
``{document}``) and optionally ``schema_name`` + ``response_schema`` for structured output.
``name@version`` is written into every output row and into every cache key, so editing a
prompt's wording (and bumping its version) never reuses answers to the old wording.
"""
from __future__ import annotations

import string
from pathlib import Path

from pydantic import Field

from core.config import StrictModel, read_yaml, validate_config
from core.errors import ConfigError


class PromptTemplate(StrictModel):
    name: str
    version: int = Field(gt=0)
    system: str
    user: str
    schema_name: str | None = None
    response_schema: dict | None = None

    @property
    def prompt_version(self) -> str:
        return f"{self.name}@{self.version}"

    def fields(self) -> set[str]:
        return {f for text in (self.system, self.user) for _, f, _, _ in string.Formatter().parse(text) if f}

    def messages(self, **values: str) -> list[dict]:
        return [{"role": "system", "content": self.system.format(**values)},
                {"role": "user", "content": self.user.format(**values)}]


def load_template(name: str, dirs: list[Path], needs: set[str] | None = None) -> PromptTemplate:
    """The first ``<name>.yaml`` in ``dirs``; ``needs`` are the fields the caller will fill."""
    for folder in dirs:
        path = folder / f"{name}.yaml"
        if path.is_file():
            template = validate_config(PromptTemplate, read_yaml(path), str(path))
            if template.name != name:
                raise ConfigError(f"{path}: name is {template.name!r}, expected {name!r} (the file name)")
            unknown = template.fields() - (needs or template.fields())
            if unknown:
                raise ConfigError(f"{path}: unknown template field(s) {sorted(unknown)}; available: {sorted(needs)}")
            return template
    raise ConfigError(f"no such prompt template {name!r}: looked for {name}.yaml in {', '.join(map(str, dirs))}")
