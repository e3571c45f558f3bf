"""Factory vs datatrove's LocalPipelineExecutor on real arXiv abstracts, in one run.

Both get the same cores, the same normalisation (ftfy + hard-wrap unwrapping + PII), the same
datatrove filters with the same parameters (the config's preset), and a MinHash dedup with
the same shingles (5 words) and bands (16 x 8). datatrove parallelises by input file, so the
corpus is split into as many Parquet shards as it has workers.

Reported: documents/second end to end, their ratio, peak memory (RSS summed over each
system's process tree, sampled every 0.2 s), agreement of the kept sets, and the factory's
near-dup precision/recall against exact Jaccard computed by brute force over candidate pairs
from a deliberately loose LSH (32 bands x 2 rows: pairs down to Jaccard ~0.3 become candidates).

    .venv/bin/python benchmarks/factory_vs_datatrove.py --input ../shared/data/arxiv_cs_abstracts.parquet
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.measure import peak_rss_of  # noqa: E402


def write_shards(input_path: Path, shard_dir: Path, shards: int, limit: int | None) -> int:
    table = pq.read_table(input_path, columns=["id", "text"])
    if limit:
        table = table.slice(0, limit)
    shard_dir.mkdir(parents=True)
    size = -(-table.num_rows // shards)
    for i in range(shards):
        pq.write_table(table.slice(i * size, size), shard_dir / f"shard-{i:03d}.parquet")
    return table.num_rows


DATATROVE_SCRIPT = r'''
import sys, json
sys.path.insert(0, {root!r})
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import ParquetReader, JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.pipeline.formatters import FTFYFormatter, PIIFormatter
from datatrove.pipeline.formatters.base import BaseFormatter
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupSignature, MinhashDedupBuckets,
    MinhashDedupCluster, MinhashDedupFilter)
from datatrove.utils.hashing import HashConfig
from factory.config import load_factory_config
from factory.stages.normalise import unwrap_hard_wraps
from factory.stages.heuristic_filters import HeuristicFilters

class Unwrap(BaseFormatter):
    name = "unwrap"
    def format(self, text):
        return unwrap_hard_wraps(text)

config = load_factory_config({config!r})
workers, work = {workers}, {work!r}
filters = [step.filter for step in HeuristicFilters(config.filters).steps()]
formatters = [FTFYFormatter()] + ([Unwrap()] if config.normalise.unwrap_hard_wraps else []) + [
    PIIFormatter(email_replacement="<EMAIL>", ip_replacement="<IP_ADDRESS>")]
fuzzy = config.dedup.fuzzy
minhash = MinhashConfig(n_grams=fuzzy.ngram_size, num_buckets=fuzzy.num_bands, hashes_per_bucket=fuzzy.rows_per_band,
                        seed=fuzzy.seed, hash_config=HashConfig(precision=64))
clean = LocalPipelineExecutor(pipeline=[ParquetReader({shards!r}), *formatters, *filters,
    JsonlWriter(work + "/filtered")], tasks=workers, workers=workers, logging_dir=work + "/logs/clean")
sigs = LocalPipelineExecutor(pipeline=[JsonlReader(work + "/filtered"), MinhashDedupSignature(work + "/sigs", config=minhash)],
    tasks=workers, workers=workers, logging_dir=work + "/logs/sigs", depends=clean)
buckets = LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(work + "/sigs", work + "/buckets", config=minhash)],
    tasks=minhash.num_buckets, workers=workers, logging_dir=work + "/logs/buckets", depends=sigs)
cluster = LocalPipelineExecutor(pipeline=[MinhashDedupCluster(work + "/buckets", work + "/remove", config=minhash)],
    tasks=1, workers=1, logging_dir=work + "/logs/cluster", depends=buckets)
final = LocalPipelineExecutor(pipeline=[JsonlReader(work + "/filtered"), MinhashDedupFilter(work + "/remove"),
    JsonlWriter(work + "/output")], tasks=workers, workers=workers, logging_dir=work + "/logs/final", depends=cluster)
if __name__ == "__main__":  # datatrove's workers may start by forkserver, which re-imports this file
    final.run()
'''


def read_jsonl_ids(folder: Path) -> set[str]:
    import gzip

    ids = set()
    for path in folder.glob("*.jsonl*"):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            ids.update(json.loads(line)["id"] for line in handle if line.strip())
    return ids


def shingle_sets(texts: list[str], n: int) -> list[set]:
    out = []
    for text in texts:
        words = re.findall(r"[^\W_]+", text.lower())
        out.append({tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1))} if words else set())
    return out


def dedup_quality(texts: list[str], ids: list[str], fuzzy, sample_pairs: int, seed: int) -> dict:
    """Precision/recall of the factory's verified near-dup pairs against brute-force exact Jaccard."""
    from factory.dedup.finding import candidate_pairs
    from factory.dedup.minhash import band_keys, minhash_texts, permutations

    a, b = permutations(fuzzy.num_perm, fuzzy.seed)
    signature, has_words = minhash_texts(pa.array(texts), fuzzy.ngram_size, a, b)

    def pairs_for(bands: int, rows: int) -> set[tuple[int, int]]:
        keys = band_keys(signature, bands, rows)
        members = pa.table({"bucket": pa.array(keys.reshape(-1)),
                            "id": pa.array(np.repeat(np.arange(len(texts)), bands).astype(str))})
        counts = np.unique(keys.reshape(-1), return_counts=True)
        shared = counts[0][counts[1] >= 2]
        members = members.filter(pa.compute.is_in(members["bucket"], value_set=pa.array(shared)))
        if members.num_rows == 0:
            return set()
        u, v, node_ids = candidate_pairs(members)
        return {tuple(sorted((int(node_ids[i]), int(node_ids[j])))) for i, j in zip(u, v)}

    ours = {p for p in pairs_for(fuzzy.num_bands, fuzzy.rows_per_band)
            if (signature[p[0]] == signature[p[1]]).mean() >= fuzzy.threshold}
    loose = pairs_for(32, 2) | ours  # 64 of the 128 permutations: candidates down to Jaccard ~0.3
    rng = np.random.default_rng(seed)
    loose_list = sorted(loose)
    if len(loose_list) > sample_pairs:
        loose_list = [loose_list[i] for i in rng.choice(len(loose_list), sample_pairs, replace=False)]
    needed = sorted({i for pair in loose_list for i in pair})
    sets = dict(zip(needed, shingle_sets([texts[i] for i in needed], fuzzy.ngram_size)))
    truth = {}
    for i, j in loose_list:
        union = len(sets[i] | sets[j])
        truth[(i, j)] = len(sets[i] & sets[j]) / union if union else 0.0
    true_pairs = {p for p, jac in truth.items() if jac >= fuzzy.threshold}
    ours_sampled = {p for p in ours if p in truth}
    tp = len(ours_sampled & true_pairs)
    return {
        "documents": len(texts),
        "candidate_pairs_loose_lsh": len(loose),
        "pairs_checked_by_brute_force": len(truth),
        "true_pairs_at_threshold": len(true_pairs),
        "factory_pairs": len(ours),
        "precision": tp / len(ours_sampled) if ours_sampled else None,
        "recall": tp / len(true_pairs) if true_pairs else None,
        "false_positives": [(ids[i], ids[j], round(truth[(i, j)], 3)) for i, j in sorted(ours_sampled - true_pairs)][:10],
        "missed": [(ids[i], ids[j], round(truth[(i, j)], 3)) for i, j in sorted(true_pairs - ours_sampled)][:10],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=str(ROOT.parent / "shared/data/arxiv_cs_abstracts.parquet"))
    parser.add_argument("--preset", default="scientific")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, help="first N documents only (quick runs)")
    parser.add_argument("--sample-pairs", type=int, default=20000)
    parser.add_argument("--json", default=str(ROOT / "benchmarks/results/factory_vs_datatrove.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-fvd-"))
    try:
        n_docs = write_shards(Path(args.input), work / "shards", args.workers, args.limit)
        config_path = work / "factory.yaml"
        config_path.write_text(yaml.safe_dump({
            "output_dir": str(work / "factory_out"), "preset": args.preset,
            "sources": [{"name": "arxiv-cs", "path": str(work / "shards"), "text_column": "text",
                         "id_column": "id", "domain": "domain"}],
            "ray": {"num_cpus": args.workers},
        }))
        python = sys.executable
        results = {"input": args.input, "documents": n_docs, "workers": args.workers, "preset": args.preset}

        wall, peak, out = peak_rss_of([python, "-m", "factory", "run", str(config_path)], ROOT)
        manifest = json.loads((work / "factory_out/manifest.json").read_text())
        results["factory"] = {"wall_s": round(wall, 1), "docs_per_s": round(n_docs / wall, 1),
                              "peak_rss_mb": round(peak / 2**20), "kept": manifest["outputs"]["documents"]["rows"],
                              "stage_timings_s": manifest["timings_s"], "funnel": manifest["stages"]}
        print(f"factory: {wall:.1f} s, {n_docs / wall:.1f} docs/s, peak {peak / 2**20:.0f} MB", flush=True)

        script = work / "datatrove_run.py"
        script.write_text(DATATROVE_SCRIPT.format(root=str(ROOT), config=str(config_path), workers=args.workers,
                                                  work=str(work / "dt"), shards=str(work / "shards")))
        wall, peak, out = peak_rss_of([python, str(script)], ROOT)
        dt_kept = read_jsonl_ids(work / "dt/output")
        dt_filtered = read_jsonl_ids(work / "dt/filtered")
        results["datatrove"] = {"wall_s": round(wall, 1), "docs_per_s": round(n_docs / wall, 1),
                                "peak_rss_mb": round(peak / 2**20), "kept": len(dt_kept),
                                "after_filters": len(dt_filtered)}
        print(f"datatrove: {wall:.1f} s, {n_docs / wall:.1f} docs/s, peak {peak / 2**20:.0f} MB", flush=True)
        results["speed_ratio_factory_over_datatrove"] = round(
            results["factory"]["docs_per_s"] / results["datatrove"]["docs_per_s"], 2)

        ours = pq.read_table(work / "factory_out/documents", columns=["id", "text"])
        our_ids = set(ours["id"].to_pylist())
        rejects = pq.read_table(work / "factory_out/rejects")
        reason_of = dict(zip(rejects["id"].to_pylist(), rejects["stage"].to_pylist()))
        only_dt = dt_kept - our_ids
        only_ours = our_ids - dt_kept
        why_only_dt = {}
        for doc in only_dt:
            why_only_dt[reason_of.get(doc, "?")] = why_only_dt.get(reason_of.get(doc, "?"), 0) + 1
        results["agreement"] = {
            "both": len(our_ids & dt_kept), "only_factory": len(only_ours), "only_datatrove": len(only_dt),
            "jaccard_of_kept_sets": round(len(our_ids & dt_kept) / max(len(our_ids | dt_kept), 1), 4),
            "only_datatrove_by_factory_stage": why_only_dt,
            "only_factory_dropped_by_datatrove_filters": len(only_ours - dt_filtered),
            "only_factory_dropped_by_datatrove_minhash": len(only_ours & dt_filtered),
        }
        # near-dup quality is measured where it matters: on the distinct texts (after exact dedup)
        from factory.config import load_factory_config

        corpus = pq.read_table(Path(args.input), columns=["id", "text"]).slice(0, n_docs)
        # distinct up to case and spacing, so the pairs measured are true near (not exact) duplicates
        keys = pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.utf8_lower(corpus["text"]), r"\s+", " "))
        keys = keys.to_pylist()
        first = sorted({key: i for i, key in reversed(list(enumerate(keys)))}.values())
        distinct = corpus.take(pa.array(first))
        results["near_dup_quality"] = dedup_quality(distinct["text"].to_pylist(), distinct["id"].to_pylist(),
                                                    load_factory_config(config_path).dedup.fuzzy,
                                                    args.sample_pairs, seed=0)
        results["date"] = time.strftime("%Y-%m-%d")
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
