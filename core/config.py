"""One config system for every job: pydantic models loaded from layered YAML.

Layers are merged in order (a job's defaults, a preset, the user's file, command-line
overrides); unknown keys are an error naming their path (``filters.c4.min_num_sentencez``),
and every config resolves to a canonical JSON whose hash identifies a run.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are rejected, values are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def deep_merge(base: dict, override: dict) -> dict:
    """Recursively merge ``override`` into ``base`` (lists and scalars are replaced; keys keep base's order)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class YamlLayer(dict):
    """A config layer read from a file: a dict that remembers its file, so ``--print-config`` can say which
    preset or file gave each value."""

    def __init__(self, data: dict, path: Path):
        super().__init__(data)
        self.path = path


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return YamlLayer({}, path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return YamlLayer(data, path)


def validation_problems(exc: ValidationError) -> list[tuple[tuple, str]]:
    """[(key path, message)] for each invalid key; an unknown key says so."""
    return [(tuple(err["loc"]), "unknown key" if err["type"] == "extra_forbidden" else err["msg"])
            for err in exc.errors()]


def format_problems(source: str, problems: list[tuple[tuple, str]]) -> str:
    lines = [f"{source}: invalid config"]
    lines += [f"  {'.'.join(str(part) for part in loc) or '(top level)'}: {message}" for loc, message in problems]
    return "\n".join(lines)


def validate_config(model: type[M], data: dict[str, Any], source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc)
        raise ConfigError(format_problems(source, problems), problems) from None


# Paths an earlier step of a chain (the recipe) will write: a config naming one is checked before anything runs,
# when the path cannot exist yet, so validators that check inputs exist skip those (``input_exists_or_pending``).
_PENDING_OUTPUTS: ContextVar[tuple[str, ...]] = ContextVar("pending_outputs", default=())


def _comparable(path: str | Path) -> str:
    """A path as roots are compared: a URI as written (no trailing slash), a local path absolute."""
    text = str(path)
    return text.rstrip("/") if "://" in text else str(Path(text).expanduser().resolve())


@contextmanager
def outputs_pending(*roots: str | Path):
    """Within the block, paths under ``roots`` (local paths or URIs) count as present: they are outputs of
    steps not run yet."""
    token = _PENDING_OUTPUTS.set(tuple(_comparable(root) for root in roots))
    try:
        yield
    finally:
        _PENDING_OUTPUTS.reset(token)


def pending_output(path: str | Path) -> bool:
    """True inside ``outputs_pending`` for a path under one of its roots."""
    where = _comparable(path)
    return any(where == root or where.startswith(root.rstrip("/") + "/") for root in _PENDING_OUTPUTS.get())


def load_layered(
    model: type[M],
    path: str | Path,
    defaults: Callable[[dict], Iterable[dict]] | Iterable[dict] = (),
    overrides: dict | None = None,
    reshape: Callable[[dict], dict] | None = None,
) -> M:
    """``defaults`` <- the user's file at ``path`` <- ``overrides``, then ``reshape``, then validated.

    ``defaults`` may be a function of the user's file, for jobs whose user file picks its preset.
    """
    user = read_yaml(path)
    layers = [*(defaults(user) if callable(defaults) else defaults), user, overrides or {}]
    data: dict = {}
    for layer in layers:
        data = deep_merge(data, layer)
    if reshape is not None:
        data = reshape(data)
    # a bad key may come from the command line (KEY=VALUE, --output-dir): the source says so
    config = validate_config(model, data, f"{path} + command-line overrides" if overrides else str(path))
    remember_layers(config, [(layer_label(layer, path), layer) for layer in layers[:-1]] + [("command line", layers[-1])])
    return config


def layer_label(layer: dict, user_path: str | Path) -> str:
    """``file my.yaml`` for the user's file, ``preset factory/presets/web.yaml`` for a job's own, ``defaults``
    for a layer built in code."""
    path = getattr(layer, "path", None)
    if path is None:
        return "defaults"
    if Path(path) == Path(user_path):
        return f"file {user_path}"
    here = Path(path).resolve()
    root = Path(__file__).resolve().parent.parent
    return f"preset {here.relative_to(root) if root in here.parents else here}"


# the layers of the last config ``load_layered`` gave, for ``--print-config`` (core.describe) to say where each
# value came from; one entry, so nothing grows with the number of loads
_last_layers: list = [None, []]


def remember_layers(config: BaseModel, layers: list[tuple[str, dict]]) -> None:
    _last_layers[:] = [config, layers]


def layers_of(config: BaseModel) -> list[tuple[str, dict]]:
    """[(label, layer)] in merge order for a config ``load_layered`` just gave; [] for any other."""
    return _last_layers[1] if _last_layers[0] is config else []


def config_hash(config: BaseModel) -> str:
    """Hash of the resolved config: the identity of a run's output."""
    canonical = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
