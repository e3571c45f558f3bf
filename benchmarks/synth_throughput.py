"""Synth request throughput against the loopback server with injected latency, vs the ideal.

The ideal at concurrency c and latency L is c / L items per second. The server runs in its own
process so it does not share this one's interpreter lock with the client.

    .venv/bin/python benchmarks/synth_throughput.py [--latency-s 0.2] [--concurrency 1 8 32 128] [--rounds 10]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from synth.config import load_synth_config  # noqa: E402
from core.llm.requests import ChatRequest  # noqa: E402
from core.llm.resolver import Resolver  # noqa: E402


def measure(base_url: str, concurrency: int, items: int, workdir: Path) -> float:
    path = workdir / f"c{concurrency}.yaml"
    path.write_text(yaml.safe_dump({
        "output_dir": str(workdir / f"out{concurrency}"),
        "endpoints": {"bench": {"base_url": base_url, "model": "bench", "concurrency": concurrency}},
        "input": {"path": "unused"}, "sft": {"generator": "bench"},
    }))
    resolver = Resolver(load_synth_config(path, "sft").llm_settings())  # a fresh cache: every request is sent
    requests = [ChatRequest(f"item-{i}", "bench", "bench", [{"role": "user", "content": f"question {i}"}],
                            {"temperature": 0.0, "max_tokens": 16}, "bench@1") for i in range(items)]
    resolver.resolve(requests[:concurrency])  # warm the connection pool
    start = time.perf_counter()
    results = resolver.resolve(requests[concurrency:])
    elapsed = time.perf_counter() - start
    resolver.close()
    assert all(r.ok and not r.cached for r in results)
    return len(results) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-s", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--rounds", type=int, default=10, help="measured items = rounds x concurrency")
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-m", "synth.testing.openai_server", "--latency-s", str(args.latency_s)],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().strip()
        print(f"loopback server {base_url}, latency {args.latency_s * 1000:.0f} ms")
        print("| concurrency | items | items/s | ideal items/s | ratio |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        with tempfile.TemporaryDirectory() as tmp:
            for concurrency in args.concurrency:
                items = concurrency * (args.rounds + 1)
                rate = measure(base_url, concurrency, items, Path(tmp))
                ideal = concurrency / args.latency_s
                print(f"| {concurrency} | {items - concurrency} | {rate:.1f} | {ideal:.1f} | {rate / ideal:.0%} |",
                      flush=True)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
