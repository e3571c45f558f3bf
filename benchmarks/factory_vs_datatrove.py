"""Factory vs datatrove's LocalPipelineExecutor on real arXiv abstracts, interleaved runs.

Both get the same cores, the same normalisation (ftfy + hard-wrap unwrapping + PII), the same
datatrove filters with the same parameters (the config's preset), and a MinHash dedup with
the same shingles (5 words) and bands (16 x 8). datatrove parallelises by input file, so the
corpus is split into as many Parquet shards as it has workers. Plans (``--plans``):

- ``factory``: the factory's default plan (exact dedup on the normalised, redacted text before
  the quality filters, then the filters, then MinHash near dedup).
- ``dt-exact``: datatrove run the same way, as its own examples run a hash dedup: formatters,
  write the formatted documents, ``ExactDedupSignature`` over them; ``ExactFindDedups``; then
  ``ExactDedupFilter`` reading the formatted documents again, the filters, and datatrove's four
  MinHash stages. It hashes the formatted text (what the factory hashes) and keeps, like the
  factory, the smallest id of each set of copies (see ``first_shard_first``).
- ``dt-old``: datatrove without exact dedup (every document reaches the filters; copies fall to
  MinHash), the plan of the first version of this benchmark.

``--runs N`` runs the plans alternately (factory, dt-exact, dt-old, factory, ...) N times each and
reports medians: wall time, documents/second, peak memory (RSS summed over the process tree,
sampled every 0.2 s), kept documents, the Jaccard of each datatrove plan's kept ids with the
factory's, and two ratios: the same plan on both engines (factory / dt-exact) and each engine's
best plan (factory / the faster datatrove plan whose kept set agrees, Jaccard >= 0.999). With
the factory, also its near-dup precision/recall against exact Jaccard computed by brute force
over candidate pairs from a deliberately loose LSH (32 bands x 2 rows: pairs down to Jaccard
~0.3 become candidates).

    .venv/bin/python benchmarks/factory_vs_datatrove.py --input $DATA/arxiv_cs_abstracts.parquet --runs 3
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.measure import peak_rss_by_process  # noqa: E402
from benchmarks.bench_data import BENCH_DATA  # noqa: E402

PLANS = ("factory", "dt-exact", "dt-old")
AGREE = 0.999  # Jaccard of kept ids at which a datatrove plan counts as giving the factory's result


def write_shards(input_path: Path, shard_dir: Path, shards: int, limit: int | None) -> int:
    table = pq.read_table(input_path, columns=["id", "text"])
    if limit:
        table = table.slice(0, limit)
    # shards of consecutive ids: datatrove's exact dedup then keeps the smallest id of a set of copies,
    # as the factory does (first_shard_first below); a no-op for the arXiv file, already sorted by id
    table = table.sort_by("id")
    shard_dir.mkdir(parents=True)
    size = -(-table.num_rows // shards)
    for i in range(shards):
        pq.write_table(table.slice(i * size, size), shard_dir / f"shard-{i:03d}.parquet")
    return table.num_rows


DATATROVE_SCRIPT = r"""
import sys, json
sys.path.insert(0, {root!r})
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import ParquetReader, JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.pipeline.formatters import FTFYFormatter, PIIFormatter
from datatrove.pipeline.formatters.base import BaseFormatter
from datatrove.pipeline.dedup import ExactDedupConfig, ExactDedupFilter, ExactDedupSignature, ExactFindDedups
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupSignature, MinhashDedupBuckets,
    MinhashDedupCluster, MinhashDedupFilter)
from datatrove.utils.hashing import HashConfig
from factory.config import load_factory_config
from factory.stages.normalise import unwrap_hard_wraps
from factory.stages.heuristic_filters import filter_steps

class Unwrap(BaseFormatter):
    name = "unwrap"
    def format(self, text):
        return unwrap_hard_wraps(text)

def formatted_text(doc) -> str:
    return doc.text

def first_shard_first(doc):
    # datatrove keeps the copy of highest priority, then the lowest index in its file. The shards are
    # consecutive id ranges, so "earlier shard first" keeps the smallest id, as the factory does
    # (priorities must lie in 1..65535). Without it, a copy early in shard 1 beats one later in shard 0.
    return 65535 - int(doc.metadata["file_path"].rsplit("shard-", 1)[1].split(".")[0])

config = load_factory_config({config!r})
workers, work, plan = {workers}, {work!r}, {plan!r}
# datatrove's filters as datatrove runs them: the factory's shared spaCy split is the factory's, not the peer's
filters = [step.filter for step in filter_steps(config.filters, share_split=False)]
formatters = [FTFYFormatter()] + ([Unwrap()] if config.normalise.unwrap_hard_wraps else []) + [
    PIIFormatter(email_replacement="<EMAIL>", ip_replacement="<IP_ADDRESS>")]
fuzzy = config.dedup.fuzzy
minhash = MinhashConfig(n_grams=fuzzy.ngram_size, num_buckets=fuzzy.num_bands, hashes_per_bucket=fuzzy.rows_per_band,
                        seed=fuzzy.seed, hash_config=HashConfig(precision=64))

def stage(name, pipeline, tasks=workers, depends=None):
    return LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=min(tasks, workers),
                                 logging_dir=work + "/logs/" + name, depends=depends)

if plan == "dt-exact":
    exact = ExactDedupConfig(content_getter=formatted_text, document_priority=first_shard_first)
    formatted = stage("format", [ParquetReader({shards!r}), *formatters, JsonlWriter(work + "/formatted"),
                                 ExactDedupSignature(work + "/exact_sigs", config=exact)])
    find = stage("exact_find", [ExactFindDedups(work + "/exact_sigs", work + "/exact_dups", config=exact)],
                 tasks=1, depends=formatted)
    clean = stage("clean", [JsonlReader(work + "/formatted"), ExactDedupFilter(work + "/exact_dups", config=exact),
                            *filters, JsonlWriter(work + "/filtered")], depends=find)
else:
    clean = stage("clean", [ParquetReader({shards!r}), *formatters, *filters, JsonlWriter(work + "/filtered")])
sigs = stage("sigs", [JsonlReader(work + "/filtered"), MinhashDedupSignature(work + "/sigs", config=minhash)],
             depends=clean)
buckets = stage("buckets", [MinhashDedupBuckets(work + "/sigs", work + "/buckets", config=minhash)],
                tasks=minhash.num_buckets, depends=sigs)
cluster = stage("cluster", [MinhashDedupCluster(work + "/buckets", work + "/remove", config=minhash)],
                tasks=1, depends=buckets)
final = stage("final", [JsonlReader(work + "/filtered"), MinhashDedupFilter(work + "/remove"),
                        JsonlWriter(work + "/output")], depends=cluster)
if __name__ == "__main__":  # datatrove's workers may start by forkserver, which re-imports this file
    final.run()
"""


def jsonl_ids(path: Path) -> list[str]:
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line)["id"] for line in handle if line.strip()]


def read_jsonl_ids(folder: Path) -> set[str]:
    return {doc for path in folder.glob("*.jsonl*") for doc in jsonl_ids(path)}


def datatrove_exact_drops(work: Path) -> set[str]:
    """Ids datatrove's ExactDedupFilter dropped: ExactFindDedups lists, per signature file (one per
    task, named by its rank like the task's formatted documents), the indices of the copies."""
    dropped = set()
    for dups in (work / "exact_dups").glob("*/*.c4_dup"):
        ids = jsonl_ids(work / "formatted" / f"{dups.name.removesuffix('.c4_dup')}.jsonl.gz")
        dropped.update(ids[i] for i in np.fromfile(dups, dtype="<u4"))
    return dropped


def shingle_sets(texts: list[str], n: int) -> list[set]:
    out = []
    for text in texts:
        words = re.findall(r"[^\W_]+", text.lower())
        out.append({tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1))} if words else set())
    return out


def dedup_quality(texts: list[str], ids: list[str], fuzzy, sample_pairs: int, seed: int) -> dict:
    """Precision/recall of the factory's verified near-dup pairs against brute-force exact Jaccard."""
    from factory.dedup.minhash import band_keys, minhash_texts, permutations

    a, b = permutations(fuzzy.num_perm, fuzzy.seed)
    signature, has_words = minhash_texts(pa.array(texts), fuzzy.ngram_size, a, b)
    rank = np.argsort(np.argsort(np.array(ids)))  # the factory's star centre is the smallest id
    row_of_rank = np.argsort(rank)

    def pairs_for(bands: int, rows: int) -> set[tuple[int, int]]:
        """The factory's candidates: in each LSH bucket, a star from its smallest id to every other member."""
        keys = band_keys(signature, bands, rows)
        members = pa.table({"bucket": pa.array(keys.reshape(-1)), "node": np.repeat(rank, bands)})
        heads = members.group_by("bucket").aggregate([("node", "min"), ("node", "count")])
        heads = heads.filter(pa.compute.greater_equal(heads["node_count"], 2)).select(["bucket", "node_min"])
        joined = members.join(heads, "bucket")
        joined = joined.filter(pa.compute.not_equal(joined["node"], joined["node_min"]))
        return {tuple(sorted((int(row_of_rank[i]), int(row_of_rank[j]))))
                for i, j in zip(joined["node_min"].to_numpy(), joined["node"].to_numpy())}

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


def write_factory_config(path: Path, output_dir: Path, shards: Path, args) -> Path:
    path.write_text(yaml.safe_dump({
        "output_dir": str(output_dir), "preset": args.preset,
        "sources": [{"name": "arxiv-cs", "path": str(shards), "text_column": "text",
                     "id_column": "id", "domain": "domain"}],
        "ray": {"num_cpus": args.workers},
    }))
    return path


def run_factory(run_dir: Path, shards: Path, args) -> dict:
    run_dir.mkdir(parents=True)
    config_path = write_factory_config(run_dir / "factory.yaml", run_dir / "out", shards, args)
    wall, peak, _ = peak_rss_by_process([sys.executable, "-m", "factory", "run", str(config_path)], ROOT)
    manifest = json.loads((run_dir / "out/manifest.json").read_text())
    rejects = pq.read_table(run_dir / "out/rejects", columns=["id", "stage"])
    return {"wall_s": wall, **peak_mb(peak),
            "kept_ids": set(pq.read_table(run_dir / "out/documents", columns=["id"])["id"].to_pylist()),
            "reject_stage": dict(zip(rejects["id"].to_pylist(), rejects["stage"].to_pylist())),
            "stage_timings_s": manifest["timings_s"], "funnel": manifest["stages"]}


def run_datatrove(run_dir: Path, plan: str, config_path: Path, shards: Path, args) -> dict:
    run_dir.mkdir(parents=True)
    script = run_dir / "datatrove_run.py"
    script.write_text(DATATROVE_SCRIPT.format(root=str(ROOT), config=str(config_path), workers=args.workers,
                                              work=str(run_dir), shards=str(shards), plan=plan))
    wall, peak, _ = peak_rss_by_process([sys.executable, str(script)], ROOT)
    run = {"wall_s": wall, **peak_mb(peak), "kept_ids": read_jsonl_ids(run_dir / "output"),
           "filtered_ids": read_jsonl_ids(run_dir / "filtered")}
    if plan == "dt-exact":
        run["exact_dropped_ids"] = datatrove_exact_drops(run_dir)
    return run


def peak_mb(peak: dict) -> dict:
    return {"peak_rss_mb": peak["tree"] / 2**20, "peak_pss_mb": peak["tree_pss"] / 2**20,
            "pss_at_peak_mb": {title: [count, round(pss / 2**20)] for title, (count, pss)
                               in sorted(peak["pss_at_peak"].items(), key=lambda item: -item[1][1])}}


def summary(runs: list[dict], n_docs: int) -> dict:
    wall = statistics.median(run["wall_s"] for run in runs)
    return {"median_wall_s": round(wall, 1), "walls_s": [round(run["wall_s"], 1) for run in runs],
            "docs_per_s": round(n_docs / wall, 1),
            "median_peak_rss_mb": round(statistics.median(run["peak_rss_mb"] for run in runs)),
            "median_peak_pss_mb": round(statistics.median(run["peak_pss_mb"] for run in runs)),
            "first_run_pss_at_peak_by_process_mb": runs[0]["pss_at_peak_mb"],  # [count, MB] per process title
            "kept": len(runs[-1]["kept_ids"]),
            "kept_same_every_run": all(run["kept_ids"] == runs[0]["kept_ids"] for run in runs)}


def agreement(ours: dict, theirs: dict) -> dict:
    """Where the factory's kept set and a datatrove plan's differ, and which datatrove step made it."""
    our_ids, dt_kept = ours["kept_ids"], theirs["kept_ids"]
    only_dt, only_ours = dt_kept - our_ids, our_ids - dt_kept
    dt_exact = theirs.get("exact_dropped_ids", set())
    result = {
        "both": len(our_ids & dt_kept), "only_factory": len(only_ours), "only_datatrove": len(only_dt),
        "jaccard_of_kept_sets": len(our_ids & dt_kept) / max(len(our_ids | dt_kept), 1),
        "only_datatrove_by_factory_stage": dict(Counter(ours["reject_stage"].get(doc, "?") for doc in only_dt)),
        "only_factory_dropped_by_datatrove_exact_dedup": len(only_ours & dt_exact),
        "only_factory_dropped_by_datatrove_filters": len(only_ours - theirs["filtered_ids"] - dt_exact),
        "only_factory_dropped_by_datatrove_minhash": len(only_ours & theirs["filtered_ids"]),
    }
    if "exact_dropped_ids" in theirs:
        our_exact = {doc for doc, stage in ours["reject_stage"].items() if stage == "exact_dedup"}
        result["exact_dedup_drops"] = {"factory": len(our_exact), "datatrove": len(dt_exact),
                                       "both": len(our_exact & dt_exact)}
    return result


def ratios(results: dict) -> dict:
    """Same plan on both engines (factory / dt-exact) and each engine's best plan (factory / the faster
    datatrove plan whose kept set agrees with the factory's)."""
    speed = {plan: s["docs_per_s"] for plan, s in results["plans"].items()}
    if "factory" not in speed:
        return {}
    out = {}
    if "dt-exact" in speed:
        out["same_plan_factory_over_dt_exact"] = round(speed["factory"] / speed["dt-exact"], 2)
    agreeing = [plan for plan, a in results["agreement"].items() if a["jaccard_of_kept_sets"] >= AGREE]
    if agreeing:
        best = max(agreeing, key=speed.get)
        out["datatrove_best_plan"] = best
        out["best_plans_factory_over_datatrove_best"] = round(speed["factory"] / speed[best], 2)
    return out


def near_dup_quality(input_path: Path, n_docs: int, config_path: Path, sample_pairs: int) -> dict:
    """The factory's near-dup quality, measured where it matters: on the distinct texts."""
    from factory.config import load_factory_config

    corpus = pq.read_table(input_path, columns=["id", "text"]).slice(0, n_docs)
    # distinct up to case and spacing, so the pairs measured are true near (not exact) duplicates
    keys = pc.utf8_trim_whitespace(pc.replace_substring_regex(pc.utf8_lower(corpus["text"]), r"\s+", " "))
    keys = keys.to_pylist()
    first = sorted({key: i for i, key in reversed(list(enumerate(keys)))}.values())
    distinct = corpus.take(pa.array(first))
    return dedup_quality(distinct["text"].to_pylist(), distinct["id"].to_pylist(),
                         load_factory_config(config_path).dedup.fuzzy, sample_pairs, seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=str(BENCH_DATA / "arxiv_cs_abstracts.parquet"))
    parser.add_argument("--preset", default="scientific")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, help="first N documents only (quick runs)")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs of each plan; medians reported")
    parser.add_argument("--plans", default=",".join(PLANS), help=f"comma-separated, of {', '.join(PLANS)}")
    parser.add_argument("--sample-pairs", type=int, default=20000)
    parser.add_argument("--json", default=str(ROOT / "benchmarks/results/factory_vs_datatrove.json"))
    args = parser.parse_args()
    plans = args.plans.split(",")
    if not plans or set(plans) - set(PLANS):
        parser.error(f"--plans takes a comma-separated subset of {', '.join(PLANS)}")
    plans = [plan for plan in PLANS if plan in plans]  # the fixed order: factory, dt-exact, dt-old

    work = Path(tempfile.mkdtemp(prefix="bench-fvd-"))
    try:
        shards = work / "shards"
        n_docs = write_shards(Path(args.input), shards, args.workers, args.limit)
        config_path = write_factory_config(work / "factory.yaml", work / "unused", shards, args)
        results = {"input": args.input, "documents": n_docs, "workers": args.workers, "preset": args.preset,
                   "runs_each": args.runs, "order": plans}
        runs = {plan: [] for plan in plans}
        for i in range(args.runs):
            for plan in plans:
                run_dir = work / f"{plan}-{i}"
                run = (run_factory(run_dir, shards, args) if plan == "factory"
                       else run_datatrove(run_dir, plan, config_path, shards, args))
                shutil.rmtree(run_dir)
                runs[plan].append(run)
                print(f"run {i + 1}/{args.runs} {plan:>8}: {run['wall_s']:6.1f} s, {n_docs / run['wall_s']:6.1f} docs/s, "
                      f"peak RSS {run['peak_rss_mb']:5.0f} MB, PSS {run['peak_pss_mb']:5.0f} MB, kept {len(run['kept_ids'])}", flush=True)
        results["plans"] = {plan: summary(plan_runs, n_docs) for plan, plan_runs in runs.items()}
        results["agreement"] = {}
        if "factory" in runs:
            ours = runs["factory"][-1]
            results["factory_stage_timings_s"], results["factory_funnel"] = ours["stage_timings_s"], ours["funnel"]
            results["agreement"] = {plan: agreement(ours, runs[plan][-1]) for plan in plans if plan != "factory"}
        results["ratios"] = ratios(results)
        if "factory" in runs:
            results["near_dup_quality"] = near_dup_quality(Path(args.input), n_docs, config_path, args.sample_pairs)
        results["date"] = time.strftime("%Y-%m-%d")
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results, indent=2))
        print(f"\nmedians of {args.runs} interleaved runs, {n_docs} documents, {args.workers} workers:")
        for plan, s in results["plans"].items():
            jaccard = results["agreement"].get(plan, {}).get("jaccard_of_kept_sets")
            print(f"  {plan:>8}: {s['median_wall_s']:7.1f} s  {s['docs_per_s']:7.1f} docs/s  "
                  f"peak RSS {s['median_peak_rss_mb']:5d} MB, PSS {s['median_peak_pss_mb']:5d} MB  kept {s['kept']}"
                  + (f"  Jaccard with factory {jaccard:.5f}" if jaccard is not None else ""))
        r = results["ratios"]
        if "same_plan_factory_over_dt_exact" in r:
            print(f"  same plan (exact dedup before the filters) on both engines, factory / datatrove: "
                  f"{r['same_plan_factory_over_dt_exact']:.2f}x")
        if "best_plans_factory_over_datatrove_best" in r:
            print(f"  each engine's best plan, factory / datatrove ({r['datatrove_best_plan']}): "
                  f"{r['best_plans_factory_over_datatrove_best']:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
