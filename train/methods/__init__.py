"""The registry of training methods: every module in this folder that defines ``STAGE`` (a
``train.method.TrainingMethod``), plus those in the folders listed in ``TRAIN_STAGE_DIRS`` (os.pathsep-
separated), for methods a team keeps outside this repository. Each method's preset is the YAML file
beside its module. Under ``ray job submit``, set TRAIN_STAGE_DIRS in the job's runtime_env so the
workers find the same methods."""
from __future__ import annotations

import importlib
import os
import pkgutil
from functools import lru_cache
from pathlib import Path

from core.errors import ConfigError
from train.method import TrainingMethod

__path__ = [*__path__, *(d for d in os.environ.get("TRAIN_STAGE_DIRS", "").split(os.pathsep) if d)]


@lru_cache(maxsize=1)
def _discover() -> dict[str, tuple[TrainingMethod, Path]]:
    """name -> (stage, its preset file), in module name order."""
    found = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        stage = getattr(module, "STAGE", None)
        if isinstance(stage, TrainingMethod):
            found[stage.name] = (stage, Path(module.__file__).with_suffix(".yaml"))
    return found


def all_stages() -> dict[str, TrainingMethod]:
    return {name: stage for name, (stage, _) in _discover().items()}


def get_stage(name: str) -> TrainingMethod:
    if name not in _discover():
        raise ConfigError(f"stage: unknown training stage {name!r}; known: {sorted(_discover())}")
    return _discover()[name][0]


def stage_preset(name: str) -> Path:
    """The YAML file beside the stage's module."""
    get_stage(name)
    return _discover()[name][1]
