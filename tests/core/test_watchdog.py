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


def test_a_heartbeat_that_stops_changing_fires_once_naming_the_stage(tmp_path):
    import threading

    from core.watchdog import HeartbeatWatch

    beat = tmp_path / "heartbeat.txt"
    fired = []

    def worker(steps: int):
        for step in range(steps):
            beat.write_text(f"step {step}\n" + "." * step)  # the size changes too, whatever the clock resolution
            time.sleep(0.05)

    with HeartbeatWatch(beat, 0.5, "train cpt (run r)", fired.append, poll_s=0.05):
        writer = threading.Thread(target=worker, args=(20,))
        writer.start()
        writer.join()
        assert fired == []  # a second of steady progress: never stalled
        time.sleep(1.0)
    assert len(fired) == 1 and fired[0].startswith("train cpt (run r): no progress for 0.5s (last heartbeat: step 19")

    never = []
    with HeartbeatWatch(tmp_path / "absent.txt", 0.2, "train sft", never.append, poll_s=0.05):
        time.sleep(0.6)
    assert never == ["train sft: no progress for 0.2s (last heartbeat: no heartbeat yet)"]
