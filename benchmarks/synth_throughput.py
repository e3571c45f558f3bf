"""Synth request throughput against the loopback server with injected latency, vs the ideal.

The ideal at concurrency c and latency L is c / L items per second. The server runs in its own
process so it does not share this one's interpreter lock with the client.

    .venv/bin/python benchmarks/synth_throughput.py [--latency-s 0.2] [--concurrency 1 8 32 128] [--rounds 10]

Realistic requests (``--realistic``): a ~1k-token prompt holding a real abstract between <document> tags, a
json_schema response format (the SFT example schema), answers that quote the document (a few hundred tokens);
``--actors 4`` resolves them the way ``ray.enabled: true`` does, on a Ray Data actor pool, each actor with
``concurrency / actors`` requests in flight:

    .venv/bin/python benchmarks/synth_throughput.py --realistic --latency-s 2 --concurrency 128 --actors 4 --rounds 10
"""
from __future__ import annotations

import argparse
import json
import math
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SAMPLE = REPO / "factory" / "sample_data" / "arxiv_cs.parquet"

import pyarrow.parquet as pq  # noqa: E402

from benchmarks.measure import run_facts  # noqa: E402
from synth.config import PROMPTS_DIR, load_synth_config  # noqa: E402
from core.llm.requests import ChatRequest  # noqa: E402
from core.llm.resolver import Resolver  # noqa: E402


def settings(base_url: str, concurrency: int, actors: int, workdir: Path, tag: str):
    """Synth's own settings (a fresh cache: every request is sent); with actors, each gets its share in flight."""
    path = workdir / f"{tag}.yaml"
    path.write_text(yaml.safe_dump({
        "output_dir": str(workdir / f"out-{tag}"),
        "endpoints": {"bench": {"base_url": base_url, "model": "bench", "concurrency": concurrency // max(actors, 1)}},
        "input": {"path": "unused"}, "sft": {"generator": "bench"},
        "ray": {"enabled": actors > 0, "actors": max(actors, 1), "batch_size": 2 * concurrency // max(actors, 1),
                "num_cpus": None},
    }))
    return load_synth_config(path, "sft").llm_settings()


def realistic_requests(items: int, tag: str) -> list[ChatRequest]:
    """~1k-token prompts around real abstracts, asking for the SFT example schema."""
    from synth.templates import load_template

    template = load_template("sft_question_answering", [PROMPTS_DIR])
    abstracts = pq.read_table(SAMPLE, columns=["text"]).column("text").to_pylist()
    requests = []
    for i in range(items):
        # four abstracts: about 1k tokens of document, as a long paper section would be
        document = "\n\n".join(abstracts[(4 * i + k) % len(abstracts)] for k in range(4))
        requests.append(ChatRequest.from_template(f"{tag}-{i}", "bench", "bench", template,
                                                  {"temperature": 0.7, "max_tokens": 1024},
                                                  document=document, title=f"{tag} paper {i}", turns="1"))
    return requests


def short_requests(items: int, tag: str) -> list[ChatRequest]:
    return [ChatRequest(f"{tag}-{i}", "bench", "bench", [{"role": "user", "content": f"question {tag} {i}"}],
                        {"temperature": 0.0, "max_tokens": 16}, "bench@1") for i in range(items)]


def measure(base_url: str, concurrency: int, items: int, workdir: Path, latency_s: float, realistic: bool = False,
            actors: int = 0) -> tuple[float, float]:
    """(items/s over the whole call, items/s in steady state). Steady state leaves out the first wave, its answers
    and its time: the answers stored after it (those landing at least half a latency after the first one) over the
    time from its last answer to the last answer of all. The answers come in waves (each answer sends the next
    request), so a cut inside a wave, such as the middle 80% of answers, counts a wave's answers without its
    latency and flatters the rate (it gave 106% of the ideal at concurrency 8). The drain at the end is kept in."""
    make = realistic_requests if realistic else short_requests
    llm = settings(base_url, concurrency, actors, workdir, f"c{concurrency}-a{actors}")
    if actors:
        from core.llm.scale import resolve_with_ray

        resolve_with_ray(make(concurrency, "warm"), llm)  # Ray and its actors' imports warm
        started = time.time()
        results = resolve_with_ray(make(items - concurrency, "bench"), llm)
        elapsed = time.time() - started
    else:
        resolver = Resolver(llm)
        resolver.resolve(make(concurrency, "warm"))  # warm the connection pool
        started = time.time()
        results = resolver.resolve(make(items - concurrency, "bench"))
        elapsed = time.time() - started
        resolver.close()
    assert all(r.ok and not r.cached for r in results), [r for r in results if not r.ok][:1]
    with sqlite3.connect(llm.cache_file) as db:
        stored = [t for (t,) in db.execute("SELECT stored_at FROM answers WHERE stored_at >= ? ORDER BY stored_at",
                                           (started,))]
    first_wave = [t for t in stored if t < stored[0] + latency_s / 2]
    after = len(stored) - len(first_wave)  # none with --rounds 1: no steady state to measure
    return len(results) / elapsed, after / (stored[-1] - first_wave[-1]) if after else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-s", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--rounds", type=int, default=10, help="measured items = rounds x concurrency")
    parser.add_argument("--realistic", action="store_true", help="~1k-token prompts, json_schema, long answers")
    parser.add_argument("--actors", type=int, default=0, help="resolve on a Ray Data actor pool of this many actors")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks/results/synth_throughput.json")
    args = parser.parse_args()
    result = {**run_facts("openai", "ray"),
              "command": " ".join(sys.argv), "latency_s": args.latency_s, "rounds": args.rounds,
              "realistic": args.realistic, "actors": args.actors, "rows": []}
    server = subprocess.Popen([sys.executable, "-m", "synth.testing.openai_server", "--latency-s", str(args.latency_s)],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().strip()
        print(f"loopback server {base_url}, latency {args.latency_s * 1000:.0f} ms, "
              f"{'realistic' if args.realistic else 'short'} requests, "
              f"{f'{args.actors} Ray actors' if args.actors else 'one process'}")
        print("| concurrency | items | items/s | ideal items/s | ratio | steady items/s | steady ratio |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        with tempfile.TemporaryDirectory() as tmp:
            for concurrency in args.concurrency:
                items = concurrency * (args.rounds + 1)
                rate, steady = measure(base_url, concurrency, items, Path(tmp), args.latency_s, args.realistic,
                                       args.actors)
                ideal = concurrency / args.latency_s
                print(f"| {concurrency} | {items - concurrency} | {rate:.1f} | {ideal:.1f} | {rate / ideal:.0%} "
                      f"| {steady:.1f} | {steady / ideal:.0%} |", flush=True)
                result["rows"].append({"concurrency": concurrency, "items": items - concurrency, "items_per_s": rate,
                                       "ideal_items_per_s": ideal,
                                       "steady_items_per_s": None if math.isnan(steady) else steady})
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
