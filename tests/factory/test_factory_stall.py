"""A factory run that stops making progress fails, naming the stuck stage, instead of hanging: Ray Data's
no-progress guard for its passes, a wait with the same timeout for the dedup steps' plain Ray tasks."""
from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import PARAGRAPHS, parquet_source, write_config, write_parquet

from core.errors import StalledError
from core.publish import current_run_dir
from core.watchdog import guard_data_progress, ray_tasks_watched
from factory import pipeline
from factory.config import load_factory_config
from factory.factory_run import run_factory
from factory.stages.base import RowStage


@pytest.fixture
def guard_restored(ray_session):
    yield
    guard_data_progress(1800)  # the other tests' runs set their own; this keeps a stray run from inheriting 2 s


def stuck_stage(release: Path) -> type[RowStage]:
    """A stage whose batches wait until ``release`` exists (defined here so that Ray pickles it by value)."""

    class Stuck(RowStage):
        name = "stuck"
        drops_rows = False

        def __call__(self, table: pa.Table) -> pa.Table:
            # Ray Data leaves a failed run's tasks running (a CLI run's local Ray ends with its process); here
            # the session's Ray goes on to the next tests, so the test releases the task once the run failed
            deadline = time.monotonic() + 120
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            return table

    return Stuck


def test_a_pass_that_moves_no_block_fails_naming_its_stage(tmp_path, monkeypatch, guard_restored):
    source = write_parquet(tmp_path / "papers.parquet", {"id": ["a", "b"], "text": PARAGRAPHS[:2]})
    output = tmp_path / "out"
    config = load_factory_config(write_config(tmp_path / "run.yaml", sources=[parquet_source("papers", source)],
                                              output_dir=output, ray={"stall_timeout_s": 20}))
    # worker processes started and Ray Data's reading warm, so the only thing that can stall is the stuck stage
    import ray

    ray.data.read_parquet(str(source)).materialize()
    release = tmp_path / "release"
    monkeypatch.setattr(pipeline, "PIPELINE", (*pipeline.PIPELINE[:2], stuck_stage(release), *pipeline.PIPELINE[2:]))
    try:
        with pytest.raises(StalledError) as stalled:
            run_factory(config)
    finally:
        release.touch()
    message = str(stalled.value)
    assert message.startswith("read+validate+stuck+normalise"), message  # the pass, named by its stages
    # Ray Data names the operator that stopped: the fused pass holding the stuck stage, its task running
    assert "no progress" in message and "MapBatches(Stuck)" in message, message
    assert [line for line in message.splitlines() if "Stuck" in line][0].endswith(": 1 active task(s), 0 finished, "
                                                                                   "0 outputs taken"), message
    assert current_run_dir(output) is None  # nothing published: no CURRENT names the stalled run


def test_dedup_tasks_that_never_finish_fail_naming_the_step(guard_restored):
    import ray

    guard_data_progress(1)
    slow = ray.remote(num_cpus=1)(lambda seconds: time.sleep(seconds) or seconds)
    assert ray_tasks_watched([slow.remote(0.1), slow.remote(0)], "dedup.quick") == [0.1, 0]
    with pytest.raises(StalledError, match=r"^dedup.exact_groups: no task finished for 1s \(1 of 2 still running\)"):
        ray_tasks_watched([slow.remote(0), slow.remote(20)], "dedup.exact_groups")
