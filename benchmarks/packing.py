"""Packing efficiency and tokenise+pack throughput on the arXiv corpus, against Hugging Face's `run_clm` recipe.

In one run of this script:
  1. the factory (scientific preset) cleans and deduplicates $BENCH_DATA/arxiv_cs_abstracts.parquet
     (domain) and general_text.parquet (general), then `python -m factory prepare` (TF-IDF grouping,
     seq_len 2048, 80/20 mixing) turns it into a packed CPT dataset: packing efficiency (real tokens /
     all token slots) of its train and validation splits, from its manifest;
  2. on the same kept documents (or the first --limit of them) and the tokenizer prepare trained,
     tokenise+pack throughput, 2 workers on each side:
       ours: Ray Data `map_batches(tokenize_batch)` over 2 CPUs, then prepare's own `pack_splits`
             (RowPacker: documents are concatenated and cut every seq_len tokens, so a document may
             continue in the next row; nothing is dropped, only the last row is short), writing
             packed Parquet shards;
       peer: transformers' examples/pytorch/language-modeling/run_clm.py recipe: `Dataset.map(
             tokenize_function, batched=True, num_proc=2)` without padding or truncation, then
             `.map(group_texts, batched=True, num_proc=2)` (default batches of 1,000 documents): each
             batch's input_ids and attention_mask are concatenated, the remainder past
             total // seq_len * seq_len is dropped, the rest cut into seq_len blocks, labels = input_ids;
             written to Parquet. One change to run_clm: our tokenize appends one EOS per document
             (no other special token), the trained tokenizer adds none, so tokenize_function appends
             eos_token_id (and a 1 to attention_mask) to each document, and both sides count the same
             tokens (checked: the totals must match). Datasets are kept in memory (no cache files).
     Each side runs --repeats times, interleaved; median wall, tokens written into rows per second,
     rows, efficiency (real tokens / all row slots) and tokens dropped.
  3. a reference that never splits a document: trl's `pack_dataset(strategy="bfd")` (best-fit
     decreasing; documents longer than seq_len are truncated to seq_len, the overflow is dropped and
     counted) on the peer's tokenised documents, once over all of them as one batch and once with
     `map`'s default batches of 1,000 (what trl's SFTTrainer does): rows and efficiency only, untimed.

  .venv/bin/python benchmarks/packing.py [--repeats 3] [--seq-len 2048] [--factory-output DIR] [--limit N]
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
from bench_data import BENCH_DATA  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = BENCH_DATA


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
    return {"wall_s": wall, "real_tokens": summary["tokens"], "kept_tokens": summary["written_tokens"],
            "rows": summary["rows"], "efficiency": summary["packing_efficiency"],
            "tokens_lost": summary["tokens"] - summary["written_tokens"]}


def run_clm_peer(documents: Path, tokenizer_dir: str, seq_len: int, out: Path) -> dict:
    """run_clm's tokenize_function + group_texts (see the module docstring for the one EOS change)."""
    from itertools import chain

    import datasets
    from transformers import AutoTokenizer

    datasets.disable_progress_bars()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    eos = tokenizer.eos_token_id
    block_size = seq_len

    def tokenize_function(examples):
        output = tokenizer(examples["text"])
        for ids, mask in zip(output["input_ids"], output["attention_mask"]):
            ids.append(eos)
            mask.append(1)
        return output

    def group_texts(examples):  # as in run_clm.py
        concatenated_examples = {k: list(chain(*examples[k])) for k in examples}
        total_length = len(concatenated_examples[list(examples.keys())[0]])
        if total_length < block_size:
            raise ValueError(f"block_size of {block_size} is too big - use a value <={total_length}")
        total_length = (total_length // block_size) * block_size
        result = {k: [t[i:i + block_size] for i in range(0, total_length, block_size)]
                  for k, t in concatenated_examples.items()}
        result["labels"] = result["input_ids"].copy()
        return result

    files = sorted(str(p) for p in documents.glob("*.parquet"))
    start = time.perf_counter()
    ds = datasets.Dataset.from_parquet(files, columns=["text"], keep_in_memory=True)
    tokenized = ds.map(tokenize_function, batched=True, num_proc=2, remove_columns=["text"], keep_in_memory=True)
    grouped = tokenized.map(group_texts, batched=True, num_proc=2, keep_in_memory=True)
    grouped.to_parquet(str(out / "grouped.parquet"))
    wall = time.perf_counter() - start
    real = pc.sum(pc.list_value_length(tokenized.data.column("input_ids"))).as_py()
    kept = len(grouped) * seq_len
    return {"wall_s": wall, "real_tokens": real, "kept_tokens": kept, "rows": len(grouped),
            "efficiency": 1.0, "tokens_lost": real - kept,  # every block is full: the remainder is dropped
            "tokenized": tokenized.select_columns(["input_ids"])}


def bfd_reference(tokenized, seq_len: int, batch_size: int | None) -> dict:
    """trl's best-fit-decreasing packer (never splits a document; longer ones are truncated): efficiency only."""
    from trl import pack_dataset

    real = pc.sum(pc.list_value_length(tokenized.data.column("input_ids"))).as_py()
    packed = pack_dataset(tokenized, seq_len, strategy="bfd", map_kwargs={"batch_size": batch_size})
    kept = pc.sum(pc.list_value_length(packed.data.column("input_ids"))).as_py()
    rows = len(packed)
    return {"batch_size": batch_size or "all", "real_tokens": real, "kept_tokens": kept, "rows": rows,
            "efficiency": round(kept / (rows * seq_len), 6), "tokens_lost": real - kept}


def first_documents(documents: Path, limit: int, work: Path) -> Path:
    """The first ``limit`` kept documents (files in name order), as one Parquet file both sides read."""
    files = sorted(documents.glob("*.parquet"))
    table = pa.concat_tables(pq.read_table(f, columns=["id", "text", "source", "domain"]) for f in files)
    out = work / f"documents-first-{limit}"
    out.mkdir()
    pq.write_table(table.slice(0, limit), out / "part-00000.parquet")
    return out


def median_of(runs: list[dict]) -> dict:
    wall = statistics.median(r["wall_s"] for r in runs)
    first = runs[0]
    return {"median_wall_s": round(wall, 2), "walls_s": [round(r["wall_s"], 2) for r in runs],
            "real_tokens": first["real_tokens"], "kept_tokens": first["kept_tokens"],
            "kept_tokens_per_s": round(first["kept_tokens"] / wall), "real_tokens_per_s": round(first["real_tokens"] / wall),
            "rows": first["rows"], "efficiency": round(first["efficiency"], 6), "tokens_lost": first["tokens_lost"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--factory-output", help="reuse a finished factory run instead of running the factory")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, help="time only the first N kept documents (quick checks)")
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
        if args.limit:
            documents = first_documents(documents, args.limit, work)
        sides = (("ours", ours), ("run_clm_group_texts", run_clm_peer))
        runs: dict[str, list[dict]] = {name: [] for name, _ in sides}
        for i in range(args.repeats):  # interleaved, so machine noise hits both sides alike
            for name, fn in sides:
                out = work / f"{name}-{i}"
                out.mkdir()
                runs[name].append(fn(documents, tokenizer, args.seq_len, out))
                print(f"  {name} run {i + 1}: {runs[name][-1]['wall_s']:.1f} s", flush=True)
                shutil.rmtree(out)
        ray.shutdown()
        tokenized = runs["run_clm_group_texts"][0]["tokenized"]
        results["documents"] = len(tokenized)
        results["throughput"] = {name: median_of(r) for name, r in runs.items()}
        mine, theirs = results["throughput"]["ours"], results["throughput"]["run_clm_group_texts"]
        if mine["real_tokens"] != theirs["real_tokens"]:
            raise SystemExit(f"token counts differ: ours {mine['real_tokens']:,}, run_clm {theirs['real_tokens']:,}")
        results["kept_tokens_per_s_ratio_ours_over_run_clm"] = round(mine["kept_tokens_per_s"] / theirs["kept_tokens_per_s"], 2)
        results["never_split_bfd"] = [bfd_reference(tokenized, args.seq_len, b) for b in (None, 1000)]
        results["date"] = time.strftime("%Y-%m-%d")
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        for name, r in results["throughput"].items():
            print(f"{name}: {r['kept_tokens_per_s']:,} tokens into rows/s (median of {args.repeats}), efficiency "
                  f"{r['efficiency']:.3%}, {r['rows']:,} rows, {r['kept_tokens']:,} of {r['real_tokens']:,} tokens kept, "
                  f"{r['tokens_lost']:,} dropped")
        for r in results["never_split_bfd"]:
            print(f"trl bfd (batches: {r['batch_size']}): efficiency {r['efficiency']:.3%}, {r['rows']:,} rows, "
                  f"{r['tokens_lost']:,} tokens truncated")
        print(f"ratio ours/run_clm tokens into rows per s: {results['kept_tokens_per_s_ratio_ours_over_run_clm']}; "
              f"wrote {args.json}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
