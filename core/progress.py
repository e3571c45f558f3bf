"""What a job prints while it runs. By default: one progress line per Ray Data execution (live on a terminal,
once when it ends elsewhere, as in CI or ``ray job logs``), the job's own status lines (``say``) and its
summary (``summary``); ``-v`` gives Ray's own logs and progress bars back; ``-q`` leaves only the summary.
Set once per process by ``set_verbosity``; ``lines_to`` sends a block's lines elsewhere (a test, a web page)."""
from __future__ import annotations

import functools
import logging
import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable, Iterator

QUIET, NORMAL, VERBOSE = -1, 0, 1
_verbosity = NORMAL

# notices that ask nothing of the user at the default verbosity: the local Ray's token-auth notice
_QUIET_LOGGERS = ("ray._private.authentication.authentication_token_setup",)


def verbosity() -> int:
    return _verbosity


def set_verbosity(level: int) -> None:
    """Set this process's verbosity (from -v/-q); Ray Data is told in ``apply_to_ray_data`` when a job starts Ray."""
    global _verbosity
    _verbosity = level
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if level >= VERBOSE else logging.ERROR)


# where say/summary lines go when a block took them (lines_to); None: stdout, at the process's verbosity.
# A context variable, so that one thread's block (the review app exporting for its admin page, or its
# silent warm-up export) leaves other threads' lines alone
_sink: ContextVar[Callable[[str], None] | None] = ContextVar("progress_sink", default=None)


def say(line: str) -> None:
    """A job's own progress or status line ("run <id>: 120 documents ..."): printed unless -q."""
    sink = _sink.get()
    if sink is not None:
        sink(line)
    elif _verbosity >= NORMAL:
        print(line)


def summary(line: str) -> None:
    """A line printed even with -q: the end-of-run summary (funnel, gate verdict, what was written where),
    or "nothing to do"."""
    (_sink.get() or print)(line)


def warn(line: str) -> None:
    """A warning about the run that goes on (``--force`` past a plan that does not fit, DPO on unreviewed pairs):
    printed even with -q, on stdout with the job's other lines."""
    summary(line)


@contextmanager
def lines_to(sink: Callable[[str], None]) -> Iterator[None]:
    """Every ``say``/``summary`` line of this block (in this thread) goes to ``sink`` instead of stdout, whatever
    the verbosity (which is the console's): ``lines_to(lines.append)`` keeps them for a page or a test,
    ``lines_to(lambda _: None)`` drops them."""
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)


def apply_to_ray_data() -> None:
    """This driver's Ray Data output at the process's verbosity (core.ray_runtime.init_ray calls it)."""
    if _verbosity < VERBOSE:
        _quiet_ray_data(show_stages=_verbosity == NORMAL)


def _quiet_ray_data(show_stages: bool) -> None:
    import ray.data
    from ray.util.debug import log_once

    context = ray.data.DataContext.get_current()
    # Ray's per-operator bars and non-tty progress logs give way to StageProgress's one line
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    # said once per process; marking them said keeps them off the console. "No available CPUs" is said while
    # a plan's own actors hold the CPUs: plans are checked up front (core.ray_runtime.cpus_left_for_data) and
    # a real hang is named by the stall guard (core.watchdog)
    for key in ("cpu_warning", "ray_data_progress_manager_disabled"):
        log_once(key)
    # INFO on the console ("Data sink Parquet finished", "execution finished") stays in Ray Data's log file
    for handler in logging.getLogger("ray.data").handlers:
        if handler.name == "console":
            handler.setLevel(logging.WARNING)
    callbacks, stage_progress = context.custom_execution_callback_classes, stage_progress_class()
    if show_stages and stage_progress not in callbacks:
        callbacks.append(stage_progress)
    elif not show_stages and stage_progress in callbacks:
        callbacks.remove(stage_progress)


@dataclass(frozen=True)
class Stage:
    """What the user calls the work a block of a job does (the README's stage or phase), and what its rows are
    (None: the pass's rows mean nothing to the user, such as a count over files: only its time is shown)."""
    label: str
    unit: str | None = "rows"


# the stage the Ray Data passes started in this block belong to (``stage``); None: the job named none
_stage: ContextVar[Stage | None] = ContextVar("progress_stage", default=None)


@contextmanager
def stage(label: str, unit: str | None = "rows") -> Iterator[None]:
    """Names the progress lines of the Ray Data passes this block starts: ``score and tokenise: 2,219 documents,
    310/s, 6.9s``. Ray's operators and our functions are never what a user is shown."""
    token = _stage.set(Stage(label, unit))
    try:
        yield
    finally:
        _stage.reset(token)


def current_stage() -> Stage | None:
    return _stage.get()


def stage_line(executor, started: float, done: bool, named: Stage | None) -> str:
    """``near dedup: 2,611 documents, 812/s, 3.2s`` for one Ray Data execution,
    named by the stage that started it; the ETA (live only) comes from Ray's estimate of the rows its reads
    will give."""
    ops = [op for op in executor._topology or () if op.input_dependencies]  # InputDataBuffer feeds, reads nothing
    if not ops:
        return ""
    named = named or Stage("working")  # a pass no stage named: still no internal name on the console
    elapsed = max(time.monotonic() - started, 1e-9)
    if named.unit is None:
        return f"{named.label}, {elapsed:.1f}s" if done else f"{named.label} ..."
    readers = [op for op in ops if op.name.startswith(("Read", "ListFiles"))]
    # rows: the most any operator after the reads received (a read's own outputs may be files, not rows, and a
    # write's outputs are its statistics), else what the reads gave
    rows = max((op.metrics.num_row_inputs_received for op in ops if op not in readers),
               default=sum(op.metrics.rows_task_outputs_generated for op in readers))
    rate = rows / elapsed
    line = f"{named.label}: {rows:,} {named.unit}, {rate:,.0f}/s"
    if done:
        return f"{line}, {elapsed:.1f}s"
    totals = [op.num_output_rows_total() for op in readers if op.name.startswith("Read")]
    if rate > 0 and totals and None not in totals and sum(totals) > rows:
        line += f", ETA {(sum(totals) - rows) / rate:.0f}s"
    return line


@functools.cache
def stage_progress_class() -> type:
    """The callback class, built on first use so that importing this module does not import Ray."""
    from ray.data._internal.execution.execution_callback import ExecutionCallback

    class StageProgress(ExecutionCallback):
        """A Ray Data execution callback (DataContext.custom_execution_callback_classes): one line per
        execution, rewritten in place on a terminal at most twice a second, printed once when it ends otherwise
        (and kept only for a pass of at least MIN_SHOWN_S)."""

        REFRESH_S = 0.5
        # a pass shorter than this (a count, a small in-memory step) is no stage anyone waits for: no line
        MIN_SHOWN_S = 1.0

        def __init__(self):
            self.started = self.shown = time.monotonic()
            self.live = sys.stdout.isatty()
            self.named: Stage | None = None

        def before_execution_starts(self, executor) -> None:
            # called in the thread that started the execution, where the job's stage is set (the steps after
            # it run in Ray Data's own thread)
            self.named = current_stage()
            self.started = self.shown = time.monotonic()

        def on_execution_step(self, executor) -> None:
            if self.live and time.monotonic() - self.shown >= self.REFRESH_S:
                self.shown = time.monotonic()
                print(f"\r\033[K{self.line(executor, done=False)}", end="", flush=True)

        def after_execution_succeeds(self, executor) -> None:
            if time.monotonic() - self.started >= self.MIN_SHOWN_S:
                print(("\r\033[K" if self.live else "") + self.line(executor, done=True), flush=True)
            elif self.live:
                print("\r\033[K", end="", flush=True)

        def after_execution_fails(self, executor, error: Exception) -> None:
            if self.live:
                print("\r\033[K", end="", flush=True)

        def line(self, executor, done: bool) -> str:
            # reads Ray Data's operator metrics, which are internal: a Ray that renamed one loses the line,
            # never the job
            try:
                return stage_line(executor, self.started, done, self.named)
            except AttributeError as exc:
                return f"(progress unavailable: {exc})"

    return StageProgress
