"""A factory run killed with SIGKILL (its driver, as a pre-empted head or a lost `ray job submit` would) and
started again with the same command continues from the units it finished: the block groups of each streaming
pass and the partitions of each dedup step, read from its ledger (``<out>/runs/<id>/_resume``). The output
equals an uninterrupted run's; the work done twice is at most the units under way at the kill: one block group
of a streaming pass, or one partition per running task of a dedup step. A rerun with a changed config starts
afresh and says why."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO, parquet_source, published, read_output, subprocess_env, write_config

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


def run(config_path: Path) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    done = subprocess.run(command(config_path), cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done, time.perf_counter() - start


def units_finished(output: Path) -> int:
    """Units the unfinished run has marked finished in its ledger: what it really wrote."""
    return sum(1 for marker in output.glob("runs/*/_resume/**/*.json")
               if marker.parent.name not in ("plan", "fixed") and marker.name != "identity.json")


def timeline(config_path: Path, output: Path) -> tuple[list[tuple[float, int]], float]:
    """Run to the end, noting when units are marked finished on disk: (seconds, units finished) at each
    change, and the run's seconds."""
    start = time.perf_counter()
    driver = subprocess.Popen(command(config_path), cwd=REPO, env=subprocess_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    seen = [(0.0, 0)]
    while driver.poll() is None:
        units = units_finished(output)
        if units > seen[-1][1]:  # (published, the ledger is gone: 0)
            seen.append((time.perf_counter() - start, units))
        time.sleep(0.05)
    assert driver.returncode == 0, driver.stderr.read()[-3000:]
    return seen, time.perf_counter() - start


def kill_at(config_path: Path, output: Path, units: int) -> tuple[int, float]:
    """Start the run and SIGKILL it (its driver and the Ray it started) once ``units`` units are finished on
    disk; returns the units finished at the kill and the seconds it ran."""
    start = time.perf_counter()
    driver = subprocess.Popen(command(config_path), cwd=REPO, env=subprocess_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while driver.poll() is None and units_finished(output) < units:
            time.sleep(0.02)
        assert driver.poll() is None, "the run finished before the kill point"
        os.killpg(driver.pid, signal.SIGKILL)
    finally:
        driver.wait(timeout=60)
    return units_finished(output), time.perf_counter() - start


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
    seen, reference_s = timeline(config(tmp_path, tmp_path / "reference"), tmp_path / "reference")
    reference = outcome(tmp_path / "reference")
    assert reference["dedup"]["exact_duplicates"] >= 100 and reference["dedup"]["near_duplicates"] > 0
    total = read_output(tmp_path / "reference").manifest["units"]
    rows = []
    for fraction in (0.3, 0.6, 0.9):
        output = tmp_path / f"killed-{int(fraction * 100)}"
        config_path = config(tmp_path, output)
        # killed once it has finished what the uninterrupted run had at that fraction of its time (units differ
        # in size: a dedup partition is far less work than a block group of the filters)
        point = max([units for at, units in seen if at <= fraction * reference_s] + [1])
        finished, killed_s = kill_at(config_path, output, point)
        rerun, rerun_s = run(config_path)
        resumed = next(line for line in rerun.stdout.splitlines() if line.startswith("resuming run"))
        manifest = read_output(output).manifest
        assert manifest["run_id"] in resumed  # the killed run's own id: it is continued, not started again
        assert outcome(output) == reference
        assert manifest["resumed"]["units_finished_before"] == finished  # nothing finished is done again
        redone = manifest["resumed"]["units_redone"]
        # at most the units under way: one block group of a streaming pass (or one whole step), or in a dedup
        # step one partition per running task
        assert redone <= CPUS, resumed
        lost = killed_s + rerun_s - reference_s  # the rerun's own Ray start included
        rows.append(f"killed at {finished}/{total} units ({fraction:.0%}): {redone} unit(s) redone "
                    f"({redone / total:.1%} of the units); killed after {killed_s:.1f} s, rerun {rerun_s:.1f} s: "
                    f"{lost:.1f} s lost on a {reference_s:.1f} s run ({lost / reference_s:.0%})")
        assert not (published(output) / "_resume").exists()  # the ledger is not published
    print("\n" + "\n".join(rows))


@pytest.mark.slow
def test_a_rerun_with_a_changed_config_starts_afresh_and_says_why(tmp_path):
    output = tmp_path / "out"
    config_path = config(tmp_path, output)
    assert kill_at(config_path, output, 5)[0] >= 5
    [killed] = [p.name for p in (output / "runs").iterdir()]
    config(tmp_path, output, dedup={"fuzzy": {"threshold": 0.9}})
    # the rerun is stopped once it has started its own run: what it decided about the killed one is said by then
    rerun = subprocess.Popen(command(config_path), cwd=REPO, env=subprocess_env(PYTHONUNBUFFERED="1"),
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    said = []
    try:
        for line in rerun.stdout:
            said.append(line)
            if line.startswith("run "):  # "run <id>: N documents from ...": its own run folder exists
                break
    finally:
        os.killpg(rerun.pid, signal.SIGKILL)
        rerun.wait(timeout=60)
    said = "".join(said)
    assert f"not resuming unfinished run {killed}: its config changed; starting afresh" in said, said
    assert "resuming run" not in said
    runs = [p.name for p in (output / "runs").iterdir()]
    assert killed not in runs and len(runs) == 1, runs
