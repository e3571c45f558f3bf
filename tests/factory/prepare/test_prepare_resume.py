"""A prepare run killed with SIGKILL (its driver and the Ray it started) and started again with the same command
continues from the phases it finished, read from its ledger (``<out>/runs/<id>/_resume``): the tokenizer it
trained, the block groups of the score and tokenise pass, the grouped documents; only the unit under way at the
kill is redone. The output equals an uninterrupted run's: packed rows in training order, both splits, the
documents, the trained tokenizer. A rerun with a changed config starts afresh and says why."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from conftest import REPO, published, subprocess_env, units_finished
from prepare_corpus import topic_corpus, write_factory_output

pytestmark = pytest.mark.slow
FILES = 12
BOUND = 1  # units under way at a kill: the phases and a pass's block groups run one after another


@pytest.fixture(scope="module")
def factory_output(tmp_path_factory) -> Path:
    """480 documents about four topics in twelve files: six block groups of two files (80 documents)."""
    corpus = topic_corpus(per_topic=120, seed=5, min_sentences=2, max_sentences=12)
    domain = [text for topic, text in corpus if topic in ("astronomy", "finance")]
    general = [text for topic, text in corpus if topic not in ("astronomy", "finance")]
    return write_factory_output(tmp_path_factory.mktemp("factory") / "factory", domain, general, files=FILES)


def config(folder: Path, factory: Path, **changes) -> Path:
    path = folder / "prepare.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({
        "input_dir": str(factory), "output_dir": str(folder / "cpt"),
        "tokenizer": {"train_vocab_size": 400, "train_sample_docs": 300},  # trained: a rerun must reuse it
        "curriculum": {"num_buckets": 2},
        "grouping": {"embedder": "tfidf", "docs_per_partition": 120, "neighbours": 4},
        "packing": {"seq_len": 128, "rows_per_shard": 32},
        "validation": {"fraction": 0.1},
        # block groups of one 40-row block per CPU
        "ray": {"num_cpus": 2, "batch_size": 40, "rows_per_block": 40, "blocks_per_group": 1},
        "quality": {"gate": False}, **changes}))
    return path


def start(config_path: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "factory", "prepare", str(config_path)], cwd=REPO,
                            env=subprocess_env(PYTHONUNBUFFERED="1"), stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def attempt(config_path: Path, log: Path, kill_at: int | None = None, past: int = 0) -> dict:
    """One start of the run, SIGKILLed (with its process group: the Ray it started) once ``kill_at`` units are
    finished on disk, or run to the end; notes when units are finished, and when it first finished more than
    ``past`` (got back past an earlier kill)."""
    output = config_path.parent / "cpt"
    began = time.perf_counter()
    driver, seen, back = start(config_path, log), [(0.0, 0)], None
    try:
        while driver.poll() is None:
            units = units_finished(output)
            if units > seen[-1][1]:  # (published, the ledger is gone: 0)
                seen.append((time.perf_counter() - began, units))
            if back is None and units > past:
                back = time.perf_counter() - began
            if kill_at is not None and units >= kill_at:
                os.killpg(driver.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        driver.wait(timeout=60)
    said = log.read_text()
    if kill_at is None:
        assert driver.returncode == 0, said[-3000:]
    else:
        assert driver.returncode == -signal.SIGKILL, f"the run ended before the kill point\n{said[-3000:]}"
    resumed = [line for line in said.splitlines() if line.startswith("resuming run")]
    seconds = time.perf_counter() - began
    # a run that finished without marking a new unit first (the last unit is never marked) got past at its end
    return {"seconds": seconds, "timeline": seen, "finished": units_finished(output),
            "back_s": back if back is not None else seconds, "resumed": resumed[0] if resumed else None, "said": said}


def outcome(output: Path) -> dict:
    """What must not change: packed rows in training order, both splits, documents, the trained tokenizer, the
    manifest's numbers."""
    run = published(output)
    manifest = json.loads((run / "manifest.json").read_text())

    def rows(folder):
        return [row for path in sorted((run / folder).glob("*.parquet")) for row in pq.read_table(path).to_pylist()]

    return {"train": rows("train"), "validation": rows("validation"),
            "documents": sorted(pq.read_table(run / "documents").to_pylist(), key=lambda r: (r["source"], r["id"])),
            "mixed_out": sorted(pq.read_table(run / "mixed_out").to_pylist(), key=lambda r: (r["source"], r["id"])),
            "tokenizer": (run / "tokenizer" / "tokenizer.json").read_text(),
            **{key: manifest[key] for key in ("tokenizer", "mixing", "curriculum", "grouping", "splits")}}


def test_a_killed_prepare_run_resumes_from_its_finished_phases_with_the_same_output(tmp_path, factory_output):
    reference = attempt(config(tmp_path / "reference", factory_output), tmp_path / "reference.log")
    expected = outcome(tmp_path / "reference" / "cpt")
    ref_manifest = json.loads((published(tmp_path / "reference" / "cpt") / "manifest.json").read_text())
    total, ref_s = ref_manifest["units"], reference["seconds"]
    assert total >= 8, total  # the tokenizer, six block groups, the grouped documents

    config_path = config(tmp_path / "killed", factory_output)
    output, run_ids, rows, attempts, finished = config_path.parent / "cpt", set(), [], [], 0
    for number, fraction in enumerate((0.3, 0.6, 0.9, None)):
        # killed once it has finished what the uninterrupted run had at that fraction of its time
        point = None if fraction is None else max(
            [finished + 1] + [units for at, units in reference["timeline"] if at <= fraction * ref_s])
        now = attempt(config_path, tmp_path / f"attempt-{number}.log", kill_at=point, past=finished)
        attempts.append(now)
        if number:  # a rerun: it continues the killed run and redoes at most the unit under way at the kill
            assert now["resumed"] is not None, now["said"][-3000:]
            run_ids.add(now["resumed"].split()[2].rstrip(":"))
            redone = int(now["resumed"].rsplit(" unit(s) under way", 1)[0].rsplit(" ", 1)[1])
            assert redone <= BOUND, now["resumed"]
            rows.append(f"killed at {finished}/{total} units: {redone} unit(s) redone ({redone / total:.0%} of the "
                        f"units); the rerun got past the kill point after {now['back_s']:.1f} s")
        finished = now["finished"]
    manifest = json.loads((published(output) / "manifest.json").read_text())
    assert run_ids == {manifest["run_id"]}  # every rerun continued the first start's run
    assert outcome(output) == expected
    assert not (published(output) / "_resume").exists() and not (published(output) / "_work").exists()
    spent = sum(a["seconds"] for a in attempts)
    rows.append(f"four starts {spent:.1f} s against an uninterrupted {ref_s:.1f} s: {spent - ref_s:.1f} s lost "
                f"({(spent - ref_s) / ref_s:.0%}, three Ray starts included)")
    print("\n" + "\n".join(rows))


def test_a_rerun_with_a_changed_config_starts_afresh_and_says_why(tmp_path, factory_output):
    config_path = config(tmp_path, factory_output)
    attempt(config_path, tmp_path / "killed.log", kill_at=1)
    [killed] = [p.name for p in (tmp_path / "cpt" / "runs").iterdir()]
    config(tmp_path, factory_output, seed=1)
    # the rerun is stopped once it has started its own run: what it decided about the killed one is said by then
    rerun = start(config_path, tmp_path / "rerun.log")
    try:
        while "prepare run " not in (tmp_path / "rerun.log").read_text() and rerun.poll() is None:
            time.sleep(0.1)
    finally:
        os.killpg(rerun.pid, signal.SIGKILL)
        rerun.wait(timeout=60)
    said = (tmp_path / "rerun.log").read_text()
    assert f"not resuming unfinished run {killed}: its config changed; starting afresh" in said, said
    assert "resuming run" not in said
    runs = [p.name for p in (tmp_path / "cpt" / "runs").iterdir()]
    assert killed not in runs and len(runs) == 1, runs
