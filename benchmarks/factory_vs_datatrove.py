"""Factory vs datatrove's LocalPipelineExecutor on real arXiv abstracts, interleaved runs.

Both get the same cores, the same normalisation (ftfy + hard-wrap unwrapping + PII), the same
datatrove filters with the same parameters (the config's preset), and a MinHash dedup with
the same shingles (5 words) and bands (16 x 8). datatrove parallelises by input file, so the
corpus is split into ``--tasks-per-worker`` (default 4) Parquet shards per worker, one per datatrove
task, so its shards balance; the factory reads the same shards. datatrove runs with its best settings
found here: intermediates (formatted and filtered documents) written without gzip, forkserver workers.
Plans (``--plans``, default the first three):

- ``factory``: the factory's default plan (exact dedup on the normalised, redacted text before
  the quality filters, then the filters, then MinHash near dedup).
- ``dt-exact``: datatrove as its users run it, the same way, as its own examples run a hash dedup:
  formatters, write the formatted documents, ``ExactDedupSignature`` over them; ``ExactFindDedups``;
  then ``ExactDedupFilter`` reading the formatted documents again, datatrove's own filters (each splits
  its words itself), and datatrove's four MinHash stages. It hashes the formatted text (what the factory
  hashes) and keeps, like the factory, the smallest id of each set of copies (see ``first_shard_first``).
- ``dt-shared``: ``dt-exact`` with the factory's shared word split installed on the same filters
  (``share_split=True``): the same filter implementation on both engines.
- ``dt-old``: datatrove without exact dedup (every document reaches the filters; copies fall to
  MinHash), the plan of the first version of this benchmark.

``--runs N`` runs the plans alternately (factory, dt-exact, dt-shared, factory, ...) N times each and
reports medians: wall time, documents/second, peak memory (RSS summed over the process tree,
sampled every 0.2 s), kept documents, the Jaccard of each datatrove plan's kept ids with the
factory's, and two ratios side by side: product (factory / datatrove as shipped: the faster of
dt-exact and dt-old whose kept set agrees, Jaccard >= 0.999) and engine (factory / dt-shared). Near-dup
precision/recall come from the factory's published clusters (last factory run) against exact Jaccard
over every pair of the documents that reached near dedup. The JSON records the commit and the machine.

    .venv/bin/python benchmarks/factory_vs_datatrove.py --runs 3
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.measure import peak_rss_by_process, run_facts  # noqa: E402
from benchmarks.bench_data import BENCH_DATA  # noqa: E402
from core.publish import current_run_dir  # noqa: E402
from factory.config import load_factory_config  # noqa: E402

PLANS = ("factory", "dt-exact", "dt-shared", "dt-old")
DEFAULT_PLANS = PLANS[:3]  # dt-old, every document through datatrove's filters, was its slower plan (314 vs 232 s)
AS_SHIPPED = ("dt-exact", "dt-old")  # datatrove's plans with its own filters
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
workers, tasks, work, plan = {workers}, {tasks}, {work!r}, {plan!r}
compression, start_method = {compression!r}, {start_method!r}
# datatrove's filters as datatrove ships them (each splits its own words), or with the factory's shared split
filters = [step.filter for step in filter_steps(config.filters, share_split={share_split})]
formatters = [FTFYFormatter()] + ([Unwrap()] if config.normalise.unwrap_hard_wraps else []) + [
    PIIFormatter(email_replacement="<EMAIL>", ip_replacement="<IP_ADDRESS>")]
fuzzy = config.dedup.fuzzy
minhash = MinhashConfig(n_grams=fuzzy.ngram_size, num_buckets=fuzzy.num_bands, hashes_per_bucket=fuzzy.rows_per_band,
                        seed=fuzzy.seed, hash_config=HashConfig(precision=64))

def stage(name, pipeline, tasks=tasks, depends=None):
    return LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=min(tasks, workers), start_method=start_method,
                                 logging_dir=work + "/logs/" + name, depends=depends)

def intermediate(folder):
    return JsonlWriter(work + "/" + folder, compression=compression)

if plan != "dt-old":
    exact = ExactDedupConfig(content_getter=formatted_text, document_priority=first_shard_first)
    formatted = stage("format", [ParquetReader({shards!r}), *formatters, intermediate("formatted"),
                                 ExactDedupSignature(work + "/exact_sigs", config=exact)])
    find = stage("exact_find", [ExactFindDedups(work + "/exact_sigs", work + "/exact_dups", config=exact)],
                 tasks=1, depends=formatted)
    clean = stage("clean", [JsonlReader(work + "/formatted"), ExactDedupFilter(work + "/exact_dups", config=exact),
                            *filters, intermediate("filtered")], depends=find)
else:
    clean = stage("clean", [ParquetReader({shards!r}), *formatters, *filters, intermediate("filtered")])
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
        ids = jsonl_ids(next((work / "formatted").glob(f"{dups.name.removesuffix('.c4_dup')}.jsonl*")))
        dropped.update(ids[i] for i in np.fromfile(dups, dtype="<u4"))
    return dropped


def shingle_sets(texts: list[str], n: int) -> list[set]:
    out = []
    for text in texts:
        words = re.findall(r"[^\W_]+", text.lower())
        out.append({tuple(words[i : i + n]) for i in range(max(1, len(words) - n + 1))} if words else set())
    return out


def similar_pairs(sets: list[set], threshold: float) -> dict[tuple[int, int], float]:
    """Every pair of sets with Jaccard >= threshold, exactly, without MinHash. Prefix filtering (written here:
    no all-pairs similarity join in the environment): such a pair shares at least one of each set's
    ``len - ceil(threshold * len) + 1`` rarest shingles, so only pairs sharing one are compared."""
    frequency = Counter(shingle for shingles in sets for shingle in shingles)
    holders: dict[tuple, list[int]] = defaultdict(list)
    candidates = set()
    for i, shingles in enumerate(sets):
        rarest = sorted(shingles, key=lambda shingle: (frequency[shingle], shingle))
        for shingle in rarest[: len(rarest) - math.ceil(threshold * len(rarest)) + 1]:
            candidates.update((j, i) for j in holders[shingle])
            holders[shingle].append(i)
    jaccards = {(i, j): len(sets[i] & sets[j]) / len(sets[i] | sets[j]) for i, j in candidates}
    return {pair: jaccard for pair, jaccard in jaccards.items() if jaccard >= threshold}


def near_dup_quality(input_path: Path, factory_run: dict, fuzzy) -> dict:
    """Precision/recall of the factory's published clusters against exact Jaccard over every pair of the
    documents that reached near dedup (kept, or rejected there); predicted pairs: two documents of one cluster.
    Texts are the input's (the factory's normalised texts of rejected rows are not published)."""
    clusters = factory_run["near_clusters"]
    members = sorted({doc for cluster in clusters.values() for doc in cluster} | factory_run["kept_ids"])
    corpus = pq.read_table(input_path, columns=["id", "text"])
    corpus = corpus.filter(pc.is_in(corpus["id"], pa.array(members)))
    ids = corpus["id"].to_pylist()
    sets = shingle_sets(corpus["text"].to_pylist(), fuzzy.ngram_size)
    truth = {tuple(sorted((ids[i], ids[j]))): jaccard for (i, j), jaccard in similar_pairs(sets, fuzzy.threshold).items()}
    predicted = {pair for cluster in clusters.values() for pair in itertools.combinations(sorted(cluster), 2)}
    found = predicted & truth.keys()
    shingles_of = dict(zip(ids, sets))
    return {
        "documents_reaching_near_dedup": len(ids), "clusters": len(clusters), "threshold": fuzzy.threshold,
        "predicted_pairs": len(predicted), "true_pairs": len(truth),
        "precision": len(found) / len(predicted) if predicted else None,
        "recall": len(found) / len(truth) if truth else None,
        "false_positives": [(a, b, round(len(shingles_of[a] & shingles_of[b]) / len(shingles_of[a] | shingles_of[b]), 3))
                            for a, b in sorted(predicted - found)[:10]],
        "missed": [(*pair, round(truth[pair], 3)) for pair in sorted(truth.keys() - found)][:10],
    }


def published_near_clusters(out: Path) -> dict[str, set[str]]:
    """The factory's near-duplicate clusters as it publishes them: each kept document's ``dup_cluster`` (its
    own id: a cluster keeps its smallest id) and each near-dedup reject's keeper, named in its detail
    (rejects carry no ``dup_cluster`` column)."""
    kept = pq.read_table(out / "documents", columns=["id", "dup_cluster"])
    rejects = pq.read_table(out / "rejects", columns=["id", "stage", "detail"])
    rejects = rejects.filter(pc.equal(rejects["stage"], "near_dedup"))
    clusters = defaultdict(set)
    for doc, detail in zip(rejects["id"].to_pylist(), rejects["detail"].to_pylist()):
        clusters[re.match(r"cluster kept as (.*); estimated Jaccard", detail).group(1)].add(doc)
    keepers = dict(zip(kept["id"].to_pylist(), kept["dup_cluster"].to_pylist()))
    for keeper, cluster in clusters.items():
        if keepers.get(keeper) != keeper:
            raise SystemExit(f"near-dup cluster {keeper} has no kept document whose dup_cluster is itself")
        cluster.add(keeper)
    return dict(clusters)


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
    out = Path(current_run_dir(run_dir / "out"))  # the published run CURRENT names
    manifest = json.loads((out / "manifest.json").read_text())
    rejects = pq.read_table(out / "rejects", columns=["id", "stage"])
    return {"wall_s": wall, **peak_mb(peak),
            "kept_ids": set(pq.read_table(out / "documents", columns=["id"])["id"].to_pylist()),
            "reject_stage": dict(zip(rejects["id"].to_pylist(), rejects["stage"].to_pylist())),
            "near_clusters": published_near_clusters(out),
            "stage_timings_s": manifest["timings_s"], "funnel": manifest["stages"]}


def run_datatrove(run_dir: Path, plan: str, config_path: Path, shards: Path, args) -> dict:
    run_dir.mkdir(parents=True)
    script = run_dir / "datatrove_run.py"
    script.write_text(DATATROVE_SCRIPT.format(
        root=str(ROOT), config=str(config_path), workers=args.workers, tasks=datatrove_tasks(args),
        work=str(run_dir), shards=str(shards), plan=plan, share_split=plan == "dt-shared",
        compression=None if args.intermediate_compression == "none" else args.intermediate_compression,
        start_method=args.start_method))
    wall, peak, _ = peak_rss_by_process([sys.executable, str(script)], ROOT)
    run = {"wall_s": wall, **peak_mb(peak), "kept_ids": read_jsonl_ids(run_dir / "output"),
           "filtered_ids": read_jsonl_ids(run_dir / "filtered")}
    if plan != "dt-old":
        run["exact_dropped_ids"] = datatrove_exact_drops(run_dir)
    return run


def datatrove_tasks(args) -> int:
    """More tasks than workers, so a worker that finishes its shard early takes another: with one shard per
    worker, the shards left after exact dedup were uneven (17,139 vs 18,775 documents)."""
    return args.workers * args.tasks_per_worker


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
    """product: factory / datatrove as its users run it (its own filters; the faster of its plans whose kept
    set agrees with the factory's). engine: factory / datatrove with the factory's shared split (dt-shared):
    the same filter implementation on both, so the ratio is the engines'."""
    speed = {plan: s["docs_per_s"] for plan, s in results["plans"].items()}
    if "factory" not in speed:
        return {}
    out = {}
    shipped = [plan for plan in AS_SHIPPED if plan in speed
               and results["agreement"][plan]["jaccard_of_kept_sets"] >= AGREE]
    if shipped:
        best = max(shipped, key=speed.get)
        out["product_plan"] = best
        out["product_factory_over_datatrove"] = round(speed["factory"] / speed[best], 2)
    if "dt-shared" in speed:
        out["engine_factory_over_datatrove_shared_split"] = round(speed["factory"] / speed["dt-shared"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=str(BENCH_DATA / "arxiv_cs_abstracts.parquet"))
    parser.add_argument("--preset", default="scientific")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks-per-worker", type=int, default=4,
                        help="datatrove's tasks (and input shards) per worker, so its shards balance")
    # none: faster for datatrove (dt-exact, 4,000 abstracts, 2 workers, 8 tasks, interleaved 2026-12-04 on a loaded
    # 2-core machine: 52.8 vs 68.5 s and 70.2 vs 97.8 s without vs with gzip); its final output stays gzip
    parser.add_argument("--intermediate-compression", choices=("none", "gzip"), default="none")
    parser.add_argument("--start-method", choices=("forkserver", "fork", "spawn"), default="forkserver",
                        help="datatrove's process start method (its default: forkserver)")
    parser.add_argument("--limit", type=int, help="first N documents only (quick runs)")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs of each plan; medians reported")
    parser.add_argument("--plans", default=",".join(DEFAULT_PLANS), help=f"comma-separated, of {', '.join(PLANS)}")
    parser.add_argument("--no-quality", action="store_true", help="skip the near-duplicate precision/recall")
    parser.add_argument("--json", default=str(ROOT / "benchmarks/results/factory_vs_datatrove.json"))
    args = parser.parse_args()
    plans = args.plans.split(",")
    if not plans or set(plans) - set(PLANS):
        parser.error(f"--plans takes a comma-separated subset of {', '.join(PLANS)}")
    plans = [plan for plan in PLANS if plan in plans]  # the fixed order: factory, dt-exact, dt-shared, dt-old

    work = Path(tempfile.mkdtemp(prefix="bench-fvd-"))
    try:
        shards = work / "shards"
        n_docs = write_shards(Path(args.input), shards, datatrove_tasks(args), args.limit)
        config_path = write_factory_config(work / "factory.yaml", work / "unused", shards, args)
        results = {**run_facts("datatrove", "ray"),
                   "input": Path(args.input).name, "documents": n_docs, "workers": args.workers,
                   "datatrove": {"tasks": datatrove_tasks(args), "intermediate_compression": args.intermediate_compression,
                                 "start_method": args.start_method},
                   "preset": args.preset, "runs_each": args.runs, "order": plans, "load_average_start": os.getloadavg()}
        runs = {plan: [] for plan in plans}
        for i in range(args.runs):
            for plan in plans:
                run_dir = work / f"{plan}-{i}"
                run = (run_factory(run_dir, shards, args) if plan == "factory"
                       else run_datatrove(run_dir, plan, config_path, shards, args))
                shutil.rmtree(run_dir)
                runs[plan].append(run)
                print(f"run {i + 1}/{args.runs} {plan:>9}: {run['wall_s']:6.1f} s, {n_docs / run['wall_s']:6.1f} docs/s, "
                      f"peak RSS {run['peak_rss_mb']:5.0f} MB, PSS {run['peak_pss_mb']:5.0f} MB, kept {len(run['kept_ids'])}", flush=True)
        results["load_average_end"] = os.getloadavg()
        results["plans"] = {plan: summary(plan_runs, n_docs) for plan, plan_runs in runs.items()}
        results["agreement"] = {}
        if "factory" in runs:
            ours = runs["factory"][-1]
            results["factory_stage_timings_s"], results["factory_funnel"] = ours["stage_timings_s"], ours["funnel"]
            results["agreement"] = {plan: agreement(ours, runs[plan][-1]) for plan in plans if plan != "factory"}
        results["ratios"] = ratios(results)
        if "factory" in runs and not args.no_quality:
            results["near_dup_quality"] = near_dup_quality(Path(args.input), runs["factory"][-1],
                                                           load_factory_config(config_path).dedup.fuzzy)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results, indent=2))
        report(results, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(results: dict, runs: int) -> None:
    print(f"\nmedians of {runs} interleaved runs, {results['documents']} documents, {results['workers']} workers "
          f"(datatrove: {results['datatrove']['tasks']} tasks), commit {results['commit']}:")
    for plan, s in results["plans"].items():
        jaccard = results["agreement"].get(plan, {}).get("jaccard_of_kept_sets")
        print(f"  {plan:>9}: {s['median_wall_s']:7.1f} s  {s['docs_per_s']:7.1f} docs/s  "
              f"peak RSS {s['median_peak_rss_mb']:5d} MB, PSS {s['median_peak_pss_mb']:5d} MB  kept {s['kept']}"
              + (f"  Jaccard with factory {jaccard:.5f}" if jaccard is not None else ""))
    r = results["ratios"]
    product = (f"{r['product_factory_over_datatrove']:.2f}x (vs {r['product_plan']})"
               if "product_factory_over_datatrove" in r else "n/a")
    engine = f"{r['engine_factory_over_datatrove_shared_split']:.2f}x" if "engine_factory_over_datatrove_shared_split" in r else "n/a"
    print(f"  factory / datatrove:  product (each as its users run it) {product}  |  "
          f"engine (same shared-split filters on both) {engine}")
    quality = results.get("near_dup_quality")
    if quality:
        print(f"  near duplicates, from the factory's published clusters: precision {quality['precision']}, "
              f"recall {quality['recall']} ({quality['predicted_pairs']} predicted, {quality['true_pairs']} true pairs)")


if __name__ == "__main__":
    main()
