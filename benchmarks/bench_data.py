"""Where the benchmark corpora are: the folder named by $BENCH_DATA, else benchmarks/data/ (git ignores it).
benchmarks/DATA.md lists each file with its public source and sha256; the tests never need them."""
from __future__ import annotations

import os
from pathlib import Path

BENCH_DATA = Path(os.environ.get("BENCH_DATA") or Path(__file__).resolve().parent / "data")
