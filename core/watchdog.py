"""No silent hangs: a stream consumed under a stall timeout fails with the stage named when nothing
arrives for too long (a Ray Data pipeline waiting for resources that never come, a dead endpoint), and
a blocking job (a Ray Train fit) is watched through a heartbeat file its workers rewrite."""
from __future__ import annotations

import _thread
import os
import queue
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

from core.errors import StalledError, exit_code

T = TypeVar("T")
_DONE = object()


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


def watched(items: Iterable[T], timeout_s: float | None, stage: str, hint: str = "") -> Iterator[T]:
    """The items of ``items`` (pulled in a helper thread); ``StalledError`` naming ``stage`` when none arrives
    for ``timeout_s`` seconds (None: wait forever)."""
    if timeout_s is None:
        yield from items
        return
    handoff: queue.Queue = queue.Queue(maxsize=1)

    def pump() -> None:
        try:
            for item in items:
                handoff.put(item)
            handoff.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            handoff.put(_Failed(exc))

    threading.Thread(target=pump, name=f"watched:{stage}", daemon=True).start()
    while True:
        try:
            item = handoff.get(timeout=timeout_s)
        except queue.Empty:
            raise StalledError(f"{stage}: no progress for {timeout_s:g}s{'; ' + hint if hint else ''}") from None
        if item is _DONE:
            return
        if isinstance(item, _Failed):
            raise item.exc
        yield item


def interrupt_then_exit(grace_s: float = 60.0, error: type[Exception] = StalledError) -> Callable[[str], None]:
    """What a stalled blocking call gets: KeyboardInterrupt in the main thread (so the job can clean up and
    report the stall as an error), then, if the main thread is still stuck after ``grace_s``, the process ends
    with ``error``'s exit code. The unpublished partial output stays for the next run to clear."""

    def on_stall(message: str) -> None:
        _thread.interrupt_main()
        time.sleep(grace_s)
        print(f"error: {message} (the job did not stop within {grace_s:g}s of the interrupt)", file=sys.stderr,
              flush=True)
        os._exit(exit_code(error(message)) or 1)

    return on_stall


class HeartbeatWatch:
    """Watches a heartbeat file that the workers rewrite as they make progress (a training step). When it
    has not changed for ``timeout_s`` seconds, counted from the start so a job that never begins is caught
    too, ``on_stall`` is called once with a message naming ``stage``; ``fired`` keeps that message."""

    def __init__(self, path: Path, timeout_s: float | None, stage: str,
                 on_stall: Callable[[str], None] | None = None, poll_s: float | None = None):
        self.path, self.timeout_s, self.stage = Path(path), timeout_s, stage
        self.on_stall = on_stall or interrupt_then_exit()
        self.poll_s = poll_s or (min(5.0, timeout_s / 4) if timeout_s else 5.0)
        self.fired: str | None = None
        self._stop = threading.Event()

    def _signature(self):
        try:
            stat = self.path.stat()
            return stat.st_mtime_ns, stat.st_size
        except FileNotFoundError:
            return None

    def _watch(self) -> None:
        last, since = self._signature(), time.monotonic()
        while not self._stop.wait(self.poll_s):
            now, signature = time.monotonic(), self._signature()
            if signature != last:
                last, since = signature, now
            elif now - since > self.timeout_s:
                detail = self.path.read_text(errors="replace").strip() if signature else "no heartbeat yet"
                self.fired = f"{self.stage}: no progress for {self.timeout_s:g}s (last heartbeat: {detail})"
                self.on_stall(self.fired)
                return

    def __enter__(self) -> "HeartbeatWatch":
        if self.timeout_s:
            threading.Thread(target=self._watch, name=f"heartbeat:{self.stage}", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()


def guard_data_progress(timeout_s: float | None) -> None:
    """Ray Data's own no-progress guard for this driver's pipelines: an execution in which no block moves
    for ``timeout_s`` raises ``ExecutionTimeoutError`` naming its operators (None: never). Set once per job;
    ``ray_tasks_watched`` reads the same timeout for the job's plain Ray tasks."""
    import ray

    ray.data.DataContext.get_current().execution_no_progress_timeout_s = timeout_s or -1


@contextmanager
def stalls_named(stage: str) -> Iterator[None]:
    """Ray Data's no-progress error, raised inside the block, as a ``StalledError`` naming ``stage``."""
    try:
        yield
    except Exception as exc:
        # looked up, not imported: a job that never imported Ray Data cannot get its error (and pays nothing)
        data_errors = sys.modules.get("ray.data.exceptions")
        if data_errors is not None and isinstance(exc, data_errors.ExecutionTimeoutError):
            raise StalledError(f"{stage}: {exc}") from None
        raise


def ray_tasks_watched(refs: list, stage: str) -> list:
    """``ray.get(refs)``, in order; ``StalledError`` naming ``stage`` when none of the tasks still running
    finishes for the job's no-progress timeout (``guard_data_progress``)."""
    import ray

    timeout_s = ray.data.DataContext.get_current().execution_no_progress_timeout_s
    pending = list(refs)
    while pending:
        finished, pending = ray.wait(pending, num_returns=1, timeout=timeout_s if timeout_s > 0 else None)
        if not finished:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise StalledError(f"{stage}: no task finished for {timeout_s:g}s ({len(pending)} of {len(refs)} "
                               "still running)")
    return ray.get(list(refs))
