"""A stream that stops making progress fails with its stage named instead of hanging."""
from __future__ import annotations

import time

import pytest

from core.errors import StalledError, exit_code
from core.watchdog import watched


def slow_after(n: int, pause_s: float):
    for i in range(n):
        yield i
    time.sleep(pause_s)
    yield n


def test_a_stalled_stream_names_its_stage():
    seen = []
    with pytest.raises(StalledError, match="perplexity domain / cpt: no progress for 0.2s; check the GPUs"):
        for item in watched(slow_after(3, 5), 0.2, "perplexity domain / cpt", "check the GPUs"):
            seen.append(item)
    assert seen == [0, 1, 2]
    assert exit_code(StalledError("x")) == 1


def test_a_stream_that_keeps_moving_is_passed_through_with_its_errors():
    assert list(watched(slow_after(3, 0.05), 1.0, "stage")) == [0, 1, 2, 3]
    assert list(watched(iter([1, 2]), None, "stage")) == [1, 2]

    def failing():
        yield 1
        raise ValueError("bad row 7")

    with pytest.raises(ValueError, match="bad row 7"):
        list(watched(failing(), 1.0, "stage"))
