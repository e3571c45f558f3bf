"""Packing efficiency and tokenise+pack throughput on the arXiv corpus, against `datasets.map` with padding.

In one run of this script:
  1. the factory (scientific preset) cleans and deduplicates ../shared/data/arxiv_cs_abstracts.parquet
     (domain) and general_text.parquet (general), then `python -m factory prepare` (TF-IDF grouping,
     seq_len 2048, 80/20 mixing) turns it into a packed CPT dataset: packing efficiency (real tokens /
     all token slots) of its train and validation splits, from its manifest;
  2. on the same kept documents and the tokenizer prepare trained, tokenise+pack throughput:
       ours: Ray Data `map_batches(tokenize_batch)` over 2 CPUs, then prepare's own `pack_in_order`
             writing packed Parquet shards;
       peer: `datasets.Dataset.map` with the same tokenizer, `padding="max_length"`, truncation at
             seq_len, `num_proc=2`, written to Parquet: the plain way to get fixed-length rows.
     Each side runs --repeats times; medians of real tokens/s, and each side's efficiency (real
     tokens / all tokens written) and tokens lost to truncation.

  .venv/bin/python benchmarks/packing.py [--repeats 3] [--seq-len 2048] [--factory-output DIR]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def run_job(args: list[str]) -> None:
    print("$ python -m factory " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "factory", *args, "--overwrite"], cwd=ROOT, check=True)


def factory_run(work: Path) -> Path:
    config = work / "factory.yaml"
    config.write_text(yaml.safe_dump({
        "output_dir": str(work / "factory_out"), "preset": "scientific",
        "sources": [
            {"name": "arxiv-cs", "path": str(DATA / "arxiv_cs_abstracts.parquet"), "text_column": "text",
             "id_column": "id", "domain": "domain"},
            {"name": "general", "path": str(DATA / "general_text.parquet"), "text_column": "text",
             "id_column": "id", "domain": "general"},
        ],
        "ray": {"num_cpus": 2},
    }))
    run_job(["run", str(config)])
    return work / "factory_out"


def prepare_run(factory_output: Path, work: Path, seq_len: int) -> Path:
    config = work / "prepare.yaml"
    config.write_text(yaml.safe_dump({
        "input_dir": str(factory_output), "output_dir": str(work / "cpt"),
        "tokenizer": {"path": None, "train_vocab_size": 8000},
        "grouping": {"embedder": "tfidf"}, "packing": {"seq_len": seq_len}, "ray": {"num_cpus": 2},
    }))
    run_job(["prepare", str(config)])
    return work / "cpt"


def ours(documents: Path, tokenizer: str, seq_len: int, out: Path) -> dict:
    """Tokenise in Ray Data, pack with the prepare job's own sequential packer."""
    import ray

    from factory.prepare.pack_splits import pack_splits
    from factory.prepare.split import TRAIN
    from factory.prepare.tokenize import tokenize_batch

    def as_one_split(batch: pa.Table) -> pa.Table:
        n = batch.num_rows
        return (batch.append_column("split", pa.array([TRAIN] * n))
                .append_column("curriculum_bucket", pa.array([0] * n, pa.int64())))

    start = time.perf_counter()
    ds = ray.data.read_parquet(str(documents)).select_columns(["id", "text", "source", "domain"])
    ds = ds.map_batches(tokenize_batch, fn_kwargs={"tokenizer_path": tokenizer}, batch_format="pyarrow",
                        batch_size=256).map_batches(as_one_split, batch_format="pyarrow")
    packed = pack_splits(ds, out, seq_len, rows_per_shard=1000, batch_size=256)
    wall = time.perf_counter() - start
    summary = packed[TRAIN].summary()
    return {"wall_s": wall, "real_tokens": summary["tokens"], "rows": summary["rows"],
            "efficiency": summary["packing_efficiency"], "tokens_lost": summary["tokens"] - summary["written_tokens"]}


def peer(documents: Path, tokenizer_dir: str, seq_len: int, out: Path) -> dict:
    """datasets.map with padding to seq_len (and truncation), as a plain pipeline does it."""
    import datasets
    from transformers import AutoTokenizer

    datasets.disable_progress_bars()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    tokenizer.pad_token = tokenizer.eos_token
    files = sorted(str(p) for p in documents.glob("*.parquet"))
    start = time.perf_counter()
    ds = datasets.Dataset.from_parquet(files, columns=["text"], keep_in_memory=True)
    tokenized = ds.map(
        lambda b: tokenizer(b["text"], padding="max_length", truncation=True, max_length=seq_len),
        batched=True, num_proc=2, remove_columns=["text"], keep_in_memory=True,
    )
    tokenized.to_parquet(str(out / "padded.parquet"))
    wall = time.perf_counter() - start
    real = pc.sum(pc.list_flatten(tokenized.data.column("attention_mask"))).as_py()
    # tokens truncation cut, counted outside the timing with the same tokenizer
    whole = sum(len(ids) for ids in tokenizer(ds.data.column("text").to_pylist())["input_ids"])
    return {"wall_s": wall, "real_tokens": real, "rows": len(tokenized),
            "efficiency": real / (len(tokenized) * seq_len), "tokens_lost": whole - real}


def median_of(runs: list[dict]) -> dict:
    wall = statistics.median(r["wall_s"] for r in runs)
    first = runs[0]
    return {"median_wall_s": round(wall, 2), "walls_s": [round(r["wall_s"], 2) for r in runs],
            "real_tokens": first["real_tokens"], "tokens_per_s": round(first["real_tokens"] / wall),
            "rows": first["rows"], "efficiency": round(first["efficiency"], 6), "tokens_lost": first["tokens_lost"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--factory-output", help="reuse a finished factory run instead of running the factory")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=str(ROOT / "benchmarks/results/packing.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-packing-"))
    try:
        factory_output = Path(args.factory_output) if args.factory_output else factory_run(work)
        cpt = prepare_run(factory_output, work, args.seq_len)
        manifest = json.loads((cpt / "manifest.json").read_text())
        results = {
            "seq_len": args.seq_len,
            "prepare": {split: {k: manifest["splits"][split][k] for k in ("documents", "tokens", "rows", "packing_efficiency")}
                        for split in ("train", "validation")},
            "prepare_timings_s": manifest["timings_s"],
        }
        print(f"prepare: packing efficiency train {results['prepare']['train']['packing_efficiency']:.4%}, "
              f"validation {results['prepare']['validation']['packing_efficiency']:.4%}", flush=True)

        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        documents, tokenizer = factory_output / "documents", str(cpt / "tokenizer")
        runs: dict[str, list[dict]] = {"ours": [], "datasets_map_padded": []}
        for i in range(args.repeats):  # interleaved, so machine noise hits both sides alike
            for name, fn in (("ours", ours), ("datasets_map_padded", peer)):
                out = work / f"{name}-{i}"
                out.mkdir()
                runs[name].append(fn(documents, tokenizer, args.seq_len, out))
                print(f"  {name} run {i + 1}: {runs[name][-1]['wall_s']:.1f} s", flush=True)
                shutil.rmtree(out)
        ray.shutdown()
        results["throughput"] = {name: median_of(r) for name, r in runs.items()}
        mine, theirs = results["throughput"]["ours"], results["throughput"]["datasets_map_padded"]
        results["tokens_per_s_ratio_ours_over_peer"] = round(mine["tokens_per_s"] / theirs["tokens_per_s"], 2)
        results["date"] = time.strftime("%Y-%m-%d")
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        for name, r in results["throughput"].items():
            print(f"{name}: {r['tokens_per_s']:,} real tokens/s (median of {args.repeats}), efficiency "
                  f"{r['efficiency']:.2%}, {r['rows']:,} rows, {r['tokens_lost']:,} tokens lost")
        print(f"ratio ours/peer tokens/s: {results['tokens_per_s_ratio_ours_over_peer']}; wrote {args.json}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
