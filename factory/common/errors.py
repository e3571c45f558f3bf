"""Errors every job raises before work starts (the CLIs turn them into exit code 2)."""
from __future__ import annotations


class InputError(ValueError):
    """An input that cannot be read as configured; the message names file, key and column."""
