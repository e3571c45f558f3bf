"""The errors a job raises on purpose, and the exit code each one means on the command line.

Exit 2: the run could not start as asked (bad config, unreadable input, an output it must not
replace). Exit 1: the run worked but its result does not add up, so nothing was published.
"""
from __future__ import annotations


class ConfigError(ValueError):
    """A config problem found before any work starts; the message names the file and key.

    ``problems`` ([(key path, message)]) lists each invalid key when the error comes from validation, so a caller
    that built the config from a bigger file (the recipe) can name the keys as that file spells them."""

    def __init__(self, message: str, problems: list[tuple[tuple, str]] | None = None):
        super().__init__(message)
        self.problems = problems or []


class InputError(ValueError):
    """An input that cannot be read as configured; the message names file, key and column."""


class OutputExistsError(RuntimeError):
    """The output directory holds something this run must not silently replace."""


class AccountingError(RuntimeError):
    """Rows went missing or appeared from nowhere: the run must not be published."""


class QualityGateError(RuntimeError):
    """The output breaks an expectation of its quality suite: it is kept unpublished for inspection."""


class ShortfallError(RuntimeError):
    """A run produced nothing, or fewer rows than its floor (``quality.min_rows``, synth's ``min_yield``): a
    failure, never a published success; the message names the top reasons rows were dropped and where they are."""


class StalledError(RuntimeError):
    """A stage made no progress for its configured time: the run stops, naming the stage, instead of hanging."""


class UnplaceableError(RuntimeError):
    """The job asked the cluster for a shape no node it can ever have holds: stopped, naming the shape and what
    the cluster offers, instead of waiting forever."""


class NodeLostError(RuntimeError):
    """A Ray node died under a stage and Ray could not recover its work: the run stops, naming the stage and the
    node; nothing is published."""


EXIT_CODES: tuple[tuple[type[Exception], int], ...] = (
    (ConfigError, 2),
    (InputError, 2),
    (OutputExistsError, 2),
    (AccountingError, 1),
    (QualityGateError, 1),
    (ShortfallError, 1),
    (StalledError, 1),
    (NodeLostError, 1),
    (UnplaceableError, 1),
)


def exit_code(exc: BaseException) -> int | None:
    """The command line's exit code for an expected error; None for a bug (let it raise)."""
    return next((code for kind, code in EXIT_CODES if isinstance(exc, kind)), None)
