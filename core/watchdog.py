"""No silent hangs: a stream consumed under a stall timeout fails with the stage named when nothing
arrives for too long (a Ray Data pipeline waiting for resources that never come, a dead endpoint)."""
from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

from core.errors import StalledError

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
