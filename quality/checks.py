"""A check: one measurement over the data, the range it must fall in, and examples of offending rows.
Whole-dataset checks hand GX their measurement; sampled ones hand it rows (see ``expectations``)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

WHOLE = "whole dataset (every row, streamed with pyarrow)"


@dataclass
class Check:
    name: str  # e.g. "unique_ids", "share.task_type.summary"
    description: str  # what it asserts, in one line
    observed: float | None  # None: not measurable here (a missing column, no target); reported, not judged
    low: float | None = None
    high: float | None = None
    examples: list[str] = field(default_factory=list)  # ids (or file#row) of offending rows
    how: str = WHOLE
    chart: str | None = None  # a chart file beside the Data Docs, when one helps

    @property
    def column(self) -> str:
        """The check's name as a column of the measurements table GX validates."""
        return re.sub(r"\W", "_", self.name)

    def expected(self) -> str:
        if self.low == self.high:
            return f"= {self.low:g}"
        if self.low is None:
            return f"<= {self.high:g}"
        if self.high is None:
            return f">= {self.low:g}"
        return f"in [{self.low:g}, {self.high:g}]"
