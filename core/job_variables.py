"""Environment variables that a job's config sets for a library (Ray Data, Ray Train) which reads them only from
the environment, unless the user exported them: then the user's value wins over every job of the process."""
from __future__ import annotations

import os


class JobVariable:
    """One such variable. Whether the user set it is noted when this is created (at import, before any job of
    this process sets it), so each later job, a recipe's next step too, still applies its own value."""

    def __init__(self, name: str):
        self.name = name
        self.user_set = name in os.environ

    def apply(self, value: object | None) -> None:
        """Set the variable to ``value`` (None: unset, the library's own default), unless the user set it."""
        if self.user_set:
            return
        if value is None:
            os.environ.pop(self.name, None)
        else:
            os.environ[self.name] = f"{value:g}" if isinstance(value, float) else str(value)
