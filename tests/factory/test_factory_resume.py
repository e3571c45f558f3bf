"""A factory run killed with SIGKILL (its driver, as a pre-empted head or a lost `ray job submit` would) and
started again with the same command continues from the units it finished: the block groups of each streaming
pass and the partitions of each dedup step, read from its ledger (``<out>/runs/<id>/_resume``). The output
equals an uninterrupted run's; the work done twice is at most the units under way at the kill. A rerun with a
changed config starts afresh and says why."""
from __future__ import annotations

import json
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
                        ray={"num_cpus": 2, "batch_size": 64, "rows_per_block": 60,
                             "shuffle_partitions": PARTITIONS},
                        quality={"gate": False}, **changes)


def command(config_path: Path) -> list[str]:
    return [sys.executable, "-m", "factory", "run", str(config_path)]


def run(config_path: Path) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    done = subprocess.run(command(config_path), cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done, time.perf_counter() - start


def units_finished(output: Path) -> int:
    """Units the unfinished run has marked finished in its ledger: what it really wrote."""
    return sum(1 for marker in output.glob("runs/*/_resume/**/*.json")
               if marker.parent.name != "plan" and marker.name != "identity.json")


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
    _, reference_s = run(config(tmp_path, tmp_path / "reference"))
    reference = outcome(tmp_path / "reference")
    assert reference["dedup"]["exact_duplicates"] >= 100 and reference["dedup"]["near_duplicates"] > 0
    total = read_output(tmp_path / "reference").manifest["units"]
    rows = []
    for fraction in (0.3, 0.6, 0.9):
        output = tmp_path / f"killed-{int(fraction * 100)}"
        config_path = config(tmp_path, output)
        finished, killed_s = kill_at(config_path, output, round(fraction * total))
        rerun, rerun_s = run(config_path)
        resumed = next(line for line in rerun.stdout.splitlines() if line.startswith("resuming run"))
        manifest = read_output(output).manifest
        assert manifest["run_id"] in resumed  # the killed run's own id: it is continued, not started again
        assert outcome(output) == reference
        assert manifest["resumed"]["units_finished_before"] == finished  # nothing finished is done again
        redone = manifest["resumed"]["units_redone"]
        assert redone <= 2, resumed  # at most the units under way: one block group, or a partition per CPU
        lost = killed_s + rerun_s - reference_s
        rows.append(f"killed at {finished}/{total} units ({fraction:.0%}): {redone} unit(s) redone "
                    f"({redone / total:.1%} of the work), {lost:.1f} s lost on a {reference_s:.1f} s run")
        assert not (published(output) / "_resume").exists()  # the ledger is not published
    print("\n" + "\n".join(rows))


@pytest.mark.slow
def test_a_rerun_with_a_changed_config_starts_afresh_and_says_why(tmp_path):
    output = tmp_path / "out"
    config_path = config(tmp_path, output)
    assert kill_at(config_path, output, 5)[0] >= 5
    config(tmp_path, output, dedup={"fuzzy": {"threshold": 0.9}})
    done, _ = run(config_path)
    assert "its config changed; starting afresh" in done.stdout, done.stdout
    assert "resuming run" not in done.stdout
    assert [p.name for p in (output / "runs").iterdir()] == [published(output).name]
