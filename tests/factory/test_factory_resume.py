"""A factory run killed with SIGKILL (its driver, as a pre-empted head or a lost `ray job submit` would) and
started again with the same command continues from the units it finished: the block groups of each streaming
pass and the partitions of each dedup step, read from its ledger (``<out>/runs/<id>/_resume``). The output
equals an uninterrupted run's; the work done twice is at most the units under way at the kill: one block group
of a streaming pass, or one partition per running task of a dedup step. A rerun with a changed config starts
afresh and says why."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO, parquet_source, published, read_output, subprocess_env, units_finished, write_config
from ray_cluster import BackgroundJob

SAMPLE = REPO / "factory" / "sample_data"
FILES = 10
PARTITIONS = 4
CPUS = 2  # dedup runs a task per CPU: at most that many partitions are under way at a kill


def corpus(folder: Path) -> list[Path]:
    """The sample's first 1,200 documents in ten files, with exact copies and near copies across files."""
    table = pq.read_table(SAMPLE / "arxiv_cs.parquet", columns=["id", "text"]).slice(0, 1_000)
    texts, ids = table["text"].to_pylist(), table["id"].to_pylist()
    texts += texts[:100] + [text + " Revised." for text in texts[100:200]]  # exact, then near copies
    ids += [f"copy-{i}" for i in range(200)]
    order = sorted(range(len(ids)), key=lambda i: (i * 7919) % len(ids))  # copies spread over the files
    folder.mkdir(parents=True)
    files = []
    for index in range(FILES):
        rows = order[index::FILES]
        files.append(folder / f"part-{index:02d}.parquet")
        pq.write_table(pa.table({"id": [ids[i] for i in rows], "text": [texts[i] for i in rows]}), files[-1])
    return files


def config(tmp_path: Path, output: Path, **changes) -> Path:
    if not (tmp_path / "corpus").is_dir():
        corpus(tmp_path / "corpus")
    return write_config(tmp_path / f"{output.name}.yaml", sources=[parquet_source("arxiv", tmp_path / "corpus")],
                        output_dir=output, preset="scientific",
                        # block groups of two 60-row blocks per CPU: five in the first pass, four in the second
                        ray={"num_cpus": CPUS, "batch_size": 64, "rows_per_block": 60, "blocks_per_group": 2,
                             "shuffle_partitions": PARTITIONS},
                        quality={"gate": False}, **changes)


def command(config_path: Path) -> list[str]:
    return [sys.executable, "-m", "factory", "run", str(config_path)]


def timeline(config_path: Path, output: Path) -> tuple[list[tuple[float, int]], float]:
    """Run to the end, noting when units are marked finished on disk: (seconds, units finished) at each
    change, and the run's seconds."""
    attempt, seen = Attempt(config_path), [(0.0, 0)]
    while attempt.job.running():
        units = units_finished(output)
        if units > seen[-1][1]:  # (published, the ledger is gone: 0)
            seen.append((attempt.seconds(), units))
        time.sleep(0.05)
    attempt.finish()
    return seen, attempt.seconds()


class Attempt:
    """One start of the run's command, its output read as it comes (a resumed run says so first)."""

    def __init__(self, config_path: Path):
        self.start = time.perf_counter()
        self.job = BackgroundJob(subprocess.Popen(
            command(config_path), cwd=REPO, env=subprocess_env(PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True))  # its own group: the kill takes its Ray too

    @property
    def lines(self) -> list[str]:
        return self.job.lines

    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def wait_for(self, output: Path, units: int, may_end: bool = False) -> float:
        """Seconds until ``units`` units are finished on disk, the attempt still running (NaN when it ended
        first and ``may_end``)."""
        while self.job.running() and units_finished(output) < units:
            time.sleep(0.02)
        if not self.job.running():
            assert may_end, "the run finished before the kill point:\n" + self.job.output[-3000:]
            return float("nan")
        return self.seconds()

    def kill(self) -> None:
        """SIGKILL to the driver and the Ray it started, as a pre-empted head dies."""
        os.killpg(self.job.process.pid, signal.SIGKILL)
        self.job.process.wait(timeout=60)
        self.job.reader.join(timeout=30)

    def finish(self) -> None:
        done = self.job.finish()
        assert done.returncode == 0, done.stdout[-3000:]

    def resumed(self) -> str:
        """The line in which the attempt said what it continues (waiting for it)."""
        while not any(line.startswith("resuming run") for line in self.lines):
            assert self.job.running() or self.job.reader.is_alive(), self.job.output[-3000:]
            time.sleep(0.05)
        return next(line for line in self.lines if line.startswith("resuming run"))


def kill_at(config_path: Path, output: Path, units: int) -> tuple[int, float]:
    """Start the run and SIGKILL it once ``units`` units are finished on disk; returns the units finished at the
    kill and the seconds it ran."""
    attempt = Attempt(config_path)
    attempt.wait_for(output, units)
    attempt.kill()
    return units_finished(output), attempt.seconds()


def outcome(output: Path) -> dict:
    """What must not change: kept documents (with their clusters), rejects, the funnel, what dedup found."""
    result = read_output(output)
    documents = result.documents.select(["id", "source", "text", "dup_cluster", "dup_cluster_size"])
    rejects = result.rejects.select(["id", "source", "stage", "reason", "detail"])
    return {"documents": sorted(documents.to_pylist(), key=lambda r: r["id"]),
            "rejects": sorted(rejects.to_pylist(), key=lambda r: r["id"]),
            "stages": result.manifest["stages"], "dedup": result.manifest["dedup"]}


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_finished_units_with_the_same_output(tmp_path):
    """One run killed three times, at about 30%, 60% and 90% of an uninterrupted run's time, each rerun continuing
    the killed one (a chain: each kill point is also tested on a run that was itself resumed)."""
    seen, reference_s = timeline(config(tmp_path, tmp_path / "reference"), tmp_path / "reference")
    reference = outcome(tmp_path / "reference")
    assert reference["dedup"]["exact_duplicates"] >= 100 and reference["dedup"]["near_duplicates"] > 0
    total = read_output(tmp_path / "reference").manifest["units"]
    output = tmp_path / "killed"
    config_path = config(tmp_path, output)
    attempt, spent, rows, run_id, finished = Attempt(config_path), 0.0, [], None, 0
    for fraction in (0.3, 0.6, 0.9):
        # killed once it has finished what the uninterrupted run had at that fraction of its time (units differ
        # in size: a dedup partition is far less work than a block group of the filters)
        point = max([units for at, units in seen if at <= fraction * reference_s] + [1])
        if run_id is not None:  # a rerun: the time it took to get back to where the killed run stopped
            back_s = attempt.wait_for(output, finished + 1)
            rows[-1] += f"; back past the kill point after {back_s:.1f} s (its Ray start included)"
            point = max(point, finished + 1)
        killed_s = attempt.wait_for(output, point)
        attempt.kill()
        spent += killed_s
        finished = units_finished(output)
        attempt = Attempt(config_path)
        resumed = attempt.resumed()
        run_id = run_id or resumed.split()[2].rstrip(":")
        assert resumed.startswith(f"resuming run {run_id}:"), resumed  # the killed run continued, not a new one
        redone = int(re.search(r"(\d+) unit\(s\) under way when it stopped are redone", resumed).group(1))
        # at most the units under way: one block group of a streaming pass (or one whole step), or in a dedup
        # step one partition per running task
        assert redone <= CPUS, resumed
        rows.append(f"killed at {finished}/{total} units ({fraction:.0%} of the time): {redone} unit(s) redone "
                    f"({redone / total:.1%} of the units)")
    back_s = attempt.wait_for(output, finished + 1, may_end=True)
    rows[-1] += f"; back past the kill point after {back_s:.1f} s (its Ray start included)"
    attempt.finish()
    spent += attempt.seconds()
    manifest = read_output(output).manifest
    assert manifest["run_id"] == run_id and outcome(output) == reference
    assert manifest["resumed"]["units_finished_before"] == finished  # nothing finished is done again
    assert not (published(output) / "_resume").exists()  # the ledger is not published
    lost = spent - reference_s
    rows.append(f"three kills: {spent:.1f} s in all against {reference_s:.1f} s uninterrupted: {lost:.1f} s lost "
                f"({lost / reference_s:.0%}, three Ray starts included)")
    print("\n" + "\n".join(rows))


@pytest.mark.slow
def test_a_rerun_with_a_changed_config_starts_afresh_and_says_why(tmp_path):
    output = tmp_path / "out"
    config_path = config(tmp_path, output)
    assert kill_at(config_path, output, 5)[0] >= 5
    [killed] = [p.name for p in (output / "runs").iterdir()]
    config(tmp_path, output, dedup={"fuzzy": {"threshold": 0.9}})
    # the rerun is stopped once it has started its own run: what it decided about the killed one is said by then
    rerun = Attempt(config_path)
    while not any(line.startswith("run ") for line in rerun.lines):  # "run <id>: N documents from ...": its folder
        assert rerun.job.running(), rerun.job.output[-3000:]
        time.sleep(0.05)
    rerun.kill()
    said = "".join(rerun.lines)
    assert f"not resuming unfinished run {killed}: its config changed; starting afresh" in said, said
    assert "resuming run" not in said
    runs = [p.name for p in (output / "runs").iterdir()]
    assert killed not in runs and len(runs) == 1, runs
