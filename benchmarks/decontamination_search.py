"""Decontamination's inner loop: finding which of a training row's n-gram hashes are eval n-grams, with
``np.isin`` (what eval/contamination.py did: it sorts the eval side again for every row) vs a binary search
in the eval hashes sorted once (``in_sorted``, what it does now). Same rows, same hashes; the matches are
checked equal before any time is reported.

    .venv/bin/python benchmarks/decontamination_search.py --eval-docs 2000 --train-docs 300 --repeats 3

Data: $BENCH_DATA/arxiv_cs_abstracts.parquet (benchmarks/DATA.md) when present (else the bundled sample): the eval side is
the first --eval-docs abstracts, the training side --train-docs rows straddling its end, so about half
the training rows are contaminated.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from eval.contamination import in_sorted, ngram_hashes  # noqa: E402
from bench_data import BENCH_DATA  # noqa: E402

BENCH_CORPUS = BENCH_DATA / "arxiv_cs_abstracts.parquet"
SAMPLE = REPO / "factory" / "sample_data" / "arxiv_cs.parquet"


def timed(match, rows: list[np.ndarray], eval_hashes: np.ndarray) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    found = [np.unique(grams[match(grams, eval_hashes)]) for grams in rows]
    return time.perf_counter() - start, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-docs", type=int, default=2000)
    parser.add_argument("--train-docs", type=int, default=300)
    parser.add_argument("--ngram", type=int, default=13)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    source = BENCH_CORPUS if BENCH_CORPUS.is_file() else SAMPLE
    texts = pq.read_table(source, columns=["text"]).column("text").to_pylist()
    eval_texts = texts[:args.eval_docs]
    start = args.eval_docs - args.train_docs // 2
    train_texts = texts[start: start + args.train_docs]
    eval_hashes = np.unique(np.concatenate([ngram_hashes(t, args.ngram) for t in eval_texts]))  # sorted
    rows = [ngram_hashes(t, args.ngram) for t in train_texts]
    print(f"{source.name}: {len(eval_texts)} eval documents ({len(eval_hashes):,} distinct {args.ngram}-grams), "
          f"{len(rows)} training rows ({sum(map(len, rows)):,} n-grams)")

    times = {"np.isin": [], "sorted search": []}
    for _ in range(args.repeats):
        isin_s, isin_found = timed(np.isin, rows, eval_hashes)
        search_s, search_found = timed(in_sorted, rows, eval_hashes)
        assert all(np.array_equal(a, b) for a, b in zip(isin_found, search_found)), "the two methods disagree"
        times["np.isin"].append(isin_s)
        times["sorted search"].append(search_s)
    contaminated = sum(len(f) > 0 for f in search_found)
    print(f"matches agree; {contaminated} of {len(rows)} training rows share an n-gram with the eval side")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:>14}: median {median:.3f} s over {args.repeats} runs = {1000 * median / len(rows):.3f} ms per row")
    print(f"ratio: {statistics.median(times['np.isin']) / statistics.median(times['sorted search']):.0f}x")


if __name__ == "__main__":
    main()
