"""The factory at 50k, 200k and 1M documents: throughput, memory, spill, and dedup quality against
duplicate clusters known by construction.

The corpus is built from the arXiv CS abstracts of $BENCH_DATA (benchmarks/DATA.md) (distinct texts only):
- each *base* document splices the first half of one abstract to the second half of another, so
  there are far more distinct bases than abstracts (two bases sharing a half have Jaccard ~1/3,
  well under the 0.8 threshold);
- 30% of the documents are duplicates of a base: a third exact copies, the rest near copies
  with one to three words replaced or the spacing changed (estimated Jaccard >= ~0.85);
- ids are shuffled, so the kept copy is not always the base.
A document's true cluster is its base. Precision and recall are over pairs of documents placed in
the same cluster (predicted: the output's ``dup_cluster``, a reject's keeper followed to its cluster).

Each size runs the factory on a fresh local Ray (2 CPUs) in its own process. The ``--sizes`` runs have the
quality filters, ftfy, PII redaction and the gate off (dedup and the data path are what must scale); the
``--full-sizes`` runs have the whole ``scientific`` pipeline on. ``ray.rows_per_partition`` is
``--rows-per-partition`` (100k: 1M documents make 10 dedup partitions, so a task's memory stops growing with
the corpus). Each run records documents/second twice (the run itself, and the whole process: Python, Ray's
start and shutdown), the driver's peak RSS, the whole process tree's peak RSS and PSS, which processes held the
PSS at its peak, the object store's peak use and the bytes Ray spilled. ``--cap-object-store`` adds a run with
the object store capped well below the corpus.

    .venv/bin/python benchmarks/factory_scale.py [--sizes 50000 200000 1000000] [--full-sizes 200000]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
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

DATA = BENCH_DATA
CAPPED_OBJECT_STORE = 100 * 2**20


# --- the corpus, with its true clusters --------------------------------------------------------


def build_corpus(size: int, path: Path, seed: int = 0) -> pa.Table:
    """Writes ``size`` documents to ``path``; returns (id, true_cluster) for scoring."""
    rng = np.random.default_rng(seed)
    abstracts = pq.read_table(DATA / "arxiv_cs_abstracts.parquet", columns=["text"])["text"]
    words = [t.split() for t in pc.unique(abstracts).to_pylist()]
    words = [w for w in words if len(w) >= 40]
    n_bases = int(size * 0.7)
    halves = rng.integers(0, len(words), size=(n_bases, 2))
    texts, clusters = [], []
    for base, (i, j) in enumerate(halves):
        first, second = words[i], words[j]
        texts.append(" ".join(first[: len(first) // 2] + second[len(second) // 2:]))
        clusters.append(base)
    vocabulary = [w for w in words[0] + words[1] + words[2] if w.isalpha()]
    for base in rng.integers(0, n_bases, size=size - n_bases):
        copy = texts[base].split(" ")
        kind = rng.random()
        if kind < 0.5 and kind >= 1 / 3:
            copy = ["  " + w if k % 7 == 0 else w for k, w in enumerate(copy)]  # spacing only
        elif kind >= 0.5:
            for position in rng.choice(len(copy), size=int(rng.integers(1, 4)), replace=False):
                copy[position] = str(rng.choice(vocabulary))
        texts.append(" ".join(copy))  # below 1/3: an exact copy
        clusters.append(int(base))
    order = rng.permutation(size)
    ids = np.array([f"doc-{k:08d}" for k in range(size)])[order]  # the keeper (smallest id) varies
    table = pa.table({"id": ids, "text": texts})
    pq.write_table(table, path, row_group_size=20_000)
    return pa.table({"id": ids, "true_cluster": clusters})


def pair_scores(truth: pa.Table, predicted: pa.Table) -> dict:
    """Pairwise precision/recall of the predicted clusters against the true ones (by contingency counts)."""
    joined = truth.join(predicted, "id")

    def pairs(counts: pa.Array) -> int:
        n = counts.to_numpy().astype(np.int64)
        return int((n * (n - 1) // 2).sum())

    both = pairs(joined.group_by(["true_cluster", "cluster"]).aggregate([("id", "count")])["id_count"])
    true = pairs(joined.group_by("true_cluster").aggregate([("id", "count")])["id_count"])
    found = pairs(joined.group_by("cluster").aggregate([("id", "count")])["id_count"])
    return {"precision": both / max(found, 1), "recall": both / max(true, 1), "true_pairs": true, "found_pairs": found}


def predicted_clusters(output: Path) -> pa.Table:
    """(id, cluster) for every document: kept ones carry ``dup_cluster``; a reject names its keeper."""
    output = Path(current_run_dir(output))  # the published run
    kept = pq.read_table(output / "documents", columns=["id", "dup_cluster"])
    cluster_of = dict(zip(kept["id"].to_pylist(), kept["dup_cluster"].to_pylist()))
    rejects = pq.read_table(output / "rejects", columns=["id", "detail"])
    keeper_of = {i: re.search(r"(?:as|kept as) (\S+?);?(?: |$)", d).group(1)
                 for i, d in zip(rejects["id"].to_pylist(), rejects["detail"].to_pylist()) if d}

    def cluster(doc: str) -> str:
        seen = 0
        while doc not in cluster_of and doc in keeper_of and seen < 10:
            doc, seen = keeper_of[doc], seen + 1
        return cluster_of.get(doc, doc)

    ids = list(cluster_of) + list(keeper_of)
    return pa.table({"id": ids, "cluster": [cluster(i) for i in ids]})


# --- one run, measured -------------------------------------------------------------------------


def run_one(config_path: Path, stats_path: Path) -> None:
    """In the measured child process: the factory on a fresh local Ray, the object store sampled meanwhile."""
    import ray
    from ray._private.internal_api import memory_summary

    from core.ray_runtime import cluster_cpus, init_ray
    from factory.config import load_factory_config
    from factory.factory_run import dedup_partitions, run_factory

    config = load_factory_config(config_path)
    init_ray(config.ray)
    partitions = dedup_partitions(config, pq.ParquetFile(config.sources[0].path).metadata.num_rows, cluster_cpus())
    address = ray.get_runtime_context().gcs_address  # this run's Ray, even when others run on the machine
    peak = {"object_store_mib": 0.0}
    done = threading.Event()

    def sample():
        while not done.wait(1.0):
            try:
                used = re.search(r"Plasma memory usage (\d+) MiB", memory_summary(address, stats_only=True))
                peak["object_store_mib"] = max(peak["object_store_mib"], float(used.group(1)) if used else 0)
            except Exception:  # the sampler must never fail the run it measures
                pass

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    manifest = run_factory(config, overwrite=True)
    wall = time.perf_counter() - start
    done.set()
    summary = memory_summary(address, stats_only=True)
    spilled = re.search(r"Spilled (\d+) MiB", summary)
    stats_path.write_text(json.dumps({
        "wall_s": wall, "object_store_peak_mib": peak["object_store_mib"],
        "spilled_mib": int(spilled.group(1)) if spilled else 0, "timings_s": manifest["timings_s"],
        "dedup": manifest["dedup"], "kept": manifest["outputs"]["documents"]["rows"],
        "rejected": manifest["outputs"]["rejects"]["rows"], "dedup_partitions": partitions,
        "funnel": [{k: stage.get(k) for k in ("stage", "dropped")} for stage in manifest.get("stages", [])],
    }))
    ray.shutdown()


def pipeline_config(full: bool) -> dict:
    """The whole ``scientific`` pipeline (the corpus is spliced arXiv abstracts), or dedup and the data path only."""
    if full:
        return {"preset": "scientific"}
    return {"preset": "web",
            "filters": {name: {"enabled": False} for name in ("gopher_repetition", "gopher_quality", "c4", "fineweb")},
            "normalise": {"ftfy": False}, "redact": {"emails": False, "ips": False, "phones": False},
            "quality": {"gate": False}}


def bench(size: int, work: Path, object_store: int | None, rows_per_partition: int, full: bool = False) -> dict:
    corpus = work / f"corpus_{size}.parquet"
    truth = build_corpus(size, corpus)
    name = f"{size}_{object_store or 'default'}_{'full' if full else 'dedup'}"
    output = work / f"out_{name}"
    config = work / f"config_{name}.yaml"
    config.write_text(yaml.safe_dump({
        **pipeline_config(full), "output_dir": str(output),
        "sources": [{"name": "scale", "path": str(corpus), "text_column": "text", "id_column": "id", "domain": "domain"}],
        "ray": {"num_cpus": 2, "object_store_memory": object_store, "rows_per_partition": rows_per_partition},
    }))
    stats_path = work / f"stats_{name}.json"
    process_wall, peaks, _ = peak_rss_by_process(
        [sys.executable, __file__, "run-one", str(config), str(stats_path)], ROOT)
    memory = {"driver_peak_rss_mib": peaks["driver"] / 2**20, "tree_peak_rss_mib": peaks["tree"] / 2**20,
              "tree_peak_pss_mib": peaks["tree_pss"] / 2**20,
              "pss_at_peak_mib": {title: [count, round(pss / 2**20)]
                                  for title, (count, pss) in sorted(peaks["pss_at_peak"].items(),
                                                                    key=lambda item: -item[1][1])}}
    stats = json.loads(stats_path.read_text())
    result = {
        "documents": size, "pipeline": "full (scientific)" if full else "dedup and data path",
        "corpus_mib": corpus.stat().st_size / 2**20,
        "object_store_cap_mib": object_store / 2**20 if object_store else None,
        "docs_per_s": size / stats["wall_s"], "process_wall_s": process_wall,
        "docs_per_s_with_start_up": size / process_wall, **memory, **stats,
        "balanced": stats["kept"] + stats["rejected"] == size,
        **pair_scores(truth, predicted_clusters(output)),
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "run-one":
        return run_one(Path(sys.argv[2]), Path(sys.argv[3]))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[50_000, 200_000, 1_000_000],
                        help="corpus sizes to run (none: only the capped run)")
    parser.add_argument("--full-sizes", type=int, nargs="*", default=[200_000],
                        help="corpus sizes to run with the whole scientific pipeline on (filters, ftfy, PII, gate)")
    parser.add_argument("--rows-per-partition", type=int, default=100_000,
                        help="ray.rows_per_partition: the most documents one dedup task holds")
    parser.add_argument("--cap-object-store", type=int, default=200_000, metavar="SIZE",
                        help=f"also run SIZE documents with a {CAPPED_OBJECT_STORE >> 20} MiB object store (0: skip)")
    parser.add_argument("--work", type=Path, default=None, help="where corpora and outputs go (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "factory_scale.json")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="factory_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    facts = {**run_facts("ray", "pyarrow"),
             "rows_per_partition": args.rows_per_partition, "load_average_start": os.getloadavg()}
    results = [bench(size, work, None, args.rows_per_partition) for size in args.sizes]
    results += [bench(size, work, None, args.rows_per_partition, full=True) for size in args.full_sizes]
    if args.cap_object_store:
        results.append(bench(args.cap_object_store, work, CAPPED_OBJECT_STORE, args.rows_per_partition))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({**facts, "load_average_end": os.getloadavg(), "runs": results}, indent=1))
    print(f"\n| documents | pipeline | partitions | object store cap | docs/s (with start-up) | driver peak RSS | "
          f"tree peak RSS (PSS) | object store peak | spilled | precision | recall | kept + rejected = in |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
    for r in results:
        cap = f"{r['object_store_cap_mib']:.0f} MiB" if r["object_store_cap_mib"] else "default"
        print(f"| {r['documents']:,} | {r['pipeline']} | {r['dedup_partitions']} | {cap} | {r['docs_per_s']:.0f} "
              f"({r['docs_per_s_with_start_up']:.0f}) | {r['driver_peak_rss_mib']:.0f} MiB | "
              f"{r['tree_peak_rss_mib']:.0f} ({r.get('tree_peak_pss_mib', float('nan')):.0f}) MiB | {r['object_store_peak_mib']:.0f} MiB | {r['spilled_mib']} MiB | "
              f"{r['precision']:.4f} | {r['recall']:.4f} | {'yes' if r['balanced'] else 'NO'} |")


if __name__ == "__main__":
    main()
