"""benchmarks/gpu_check.py --tiny on CPU: the stage code without Ray, every row (CPT and SFT, with and without
ZeRO-2/3) trains to finite losses, with tokens/s and the plan's estimate, in the JSON and the printed table."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROWS = ["cpt:0", "cpt:2", "cpt:3", "sft:0", "sft:2", "sft:3"]


def test_tiny_gpu_check_runs_every_row(tmp_path):
    out = tmp_path / "gpu_check.json"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--tiny", "--steps", "3",
                           "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["tiny"] and report["machine"]["torch"] and report["machine"]["deepspeed"]
    rows = {row["row"]: row for row in report["rows"]}
    assert list(rows) == ROWS
    for name, row in rows.items():
        assert "error" not in row, row
        assert row["steps"] == 3, name
        # every step has targets (SFT blocks hold assistant tokens, CPT rows more than one document's first token)
        assert len(row["losses"]) == 3 and all(math.isfinite(loss) and loss > 0 for loss in row["losses"]), row
        assert row["tokens_per_s"] > 0, row
        assert row["peak_gb"] is None  # CPU: no allocator peak
        assert row["plan_gb"]["total"] > row["plan_gb"]["overhead"] > 0  # train plan's estimate, same config
        assert f"| {name} | n/a |" in done.stdout  # the table's line
