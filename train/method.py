"""What a training method (cpt, sft, dpo, ...) declares. ``train/methods/<name>.py`` holds one (its ``STAGE``)
with its training loop, and ``train/methods/<name>.yaml`` its preset; the CLI, the config loader, ``data`` and
``launch`` read the declarations from the registry (``train.methods``) and never name a method themselves. A
method is chosen by the ``stage:`` config key and the ``python -m train NAME`` command, whose names stay."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from core.config import StrictModel


@dataclass(frozen=True)
class TrainingMethod:
    name: str  # the CLI command (python -m train NAME) and the key of its own config section
    summary: str  # one line for --help
    input_columns: tuple[str, ...]  # the contract every input file must have
    train_loop_per_worker: Callable[[dict], None]  # the training loop Ray Train runs on every worker
    # False: every worker reads the whole (small) set and the trainer's sampler splits it;
    # True: each worker streams a disjoint shard (corpus-sized inputs, as CPT's)
    shard_per_worker: bool = False
    needs_chat_template: bool = True  # checked on the tokenizer before Ray starts
    options: type[StrictModel] | None = None  # the method's own config section, under ``name:``
    filter_columns: Callable[[object], list[str]] = lambda config: []  # columns ``select_rows`` reads
    select_rows: Callable[[object, object], object] | None = None  # (Ray dataset, config) -> Ray dataset
    check: Callable[[object], None] | None = None  # cross-section checks before Ray starts; raises ConfigError

    def columns(self, config) -> list[str]:
        """What is read from the input: the contract, and what row selection needs."""
        return list(dict.fromkeys([*self.input_columns, *self.filter_columns(config)]))
