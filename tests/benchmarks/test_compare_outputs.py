"""benchmarks/compare_outputs.py on two small output folders: run ids, times and file splits aside."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "compare_outputs.py"

ROWS = {"id": ["a", "b", "c", "d"], "text": ["one", "two", "three", "four"], "tokens": [[1], [2, 2], [3], []]}


def make_output(root: Path, run_id: str, started: str, splits: list[slice], rows=ROWS) -> Path:
    """A job's output folder: documents/ as Parquet parts, a manifest and a report."""
    table = pa.table(rows)
    (root / "documents").mkdir(parents=True)
    files = []
    for n, part in enumerate(splits):  # Ray's file names (dataset id, random uuid) and block splits differ per run
        path = root / "documents" / f"0358{run_id[-6:]:0>18}_{uuid.uuid4().hex}_{n:06d}-0.parquet"
        pq.write_table(table[part], path)
        files.append({"path": str(path), "bytes": path.stat().st_size})
    (root / "manifest.json").write_text(json.dumps({
        "run_id": run_id, "started_at": started, "timings_s": {"total": len(run_id)}, "inputs": files,
        "config": {"output_dir": str(root)}, "outputs": {"documents": {"rows": table.num_rows}}}))
    (root / "report.md").write_text(f"# Run {run_id}\nWritten to {root}/documents at {started}.\nKept 4 of 4.\n")
    return root


def compare(before: Path, after: Path):
    return subprocess.run([sys.executable, str(SCRIPT), str(before), str(after)], capture_output=True, text=True)


def test_same_content_in_other_file_splits_and_runs_is_the_same(tmp_path):
    before = make_output(tmp_path / "before", "20250101T000000Z-aaaaaa", "2025-01-01T00:00:00+00:00",
                         [slice(0, 4)])
    after = make_output(tmp_path / "other" / "after", "20260202T101010Z-bbbbbb", "2026-02-02T10:10:10.5+00:00",
                        [slice(2, 4), slice(0, 1), slice(1, 2)])
    done = compare(before, after)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "documents/*.parquet: same", "manifest.json: same", "report.md: same"]


def test_one_changed_cell_names_the_file_and_column(tmp_path):
    changed = {**ROWS, "text": ["one", "two", "THREE", "four"]}
    before = make_output(tmp_path / "before", "20250101T000000Z-aaaaaa", "2025-01-01T00:00:00+00:00", [slice(0, 4)])
    after = make_output(tmp_path / "after", "20250101T000000Z-aaaaaa", "2025-01-01T00:00:00+00:00",
                        [slice(0, 2), slice(2, 4)], rows=changed)
    done = compare(before, after)
    assert done.returncode == 1
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    assert lines["documents/*.parquet"].startswith("DIFFERS: column text: 1 value(s) only before")
    assert '"three"' in lines["documents/*.parquet"] and '"THREE"' in lines["documents/*.parquet"]
    assert lines["manifest.json"] == "same" and lines["report.md"] == "same"


def test_a_changed_count_in_json_and_text_is_named(tmp_path):
    before = make_output(tmp_path / "before", "20250101T000000Z-aaaaaa", "2025-01-01T00:00:00+00:00", [slice(0, 4)])
    after = make_output(tmp_path / "after", "20250101T000000Z-aaaaaa", "2025-01-01T00:00:00+00:00", [slice(0, 4)])
    manifest = json.loads((after / "manifest.json").read_text())
    manifest["outputs"]["documents"]["rows"] = 3
    (after / "manifest.json").write_text(json.dumps(manifest))
    (after / "report.md").write_text((after / "report.md").read_text().replace("Kept 4", "Kept 3"))
    (after / "extra.txt").write_text("new\n")
    done = compare(before, after)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "documents/*.parquet: same",
        f"extra.txt: DIFFERS: only in {after}",
        "manifest.json: DIFFERS: outputs.documents.rows: 4 -> 3",
        "report.md: DIFFERS: line 3, column 6: 'Kept 4 of 4.' -> 'Kept 3 of 4.'",
    ]
