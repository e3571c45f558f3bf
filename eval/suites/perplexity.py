"""Perplexity on held-out text: token-weighted over documents (exp of the mean NLL of every scored
token), the per-document distribution, and bits per byte (comparable across tokenizers)."""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from eval.config import EvalConfig
from eval.suites.common import Work, split_into_sets, union_of_sets, write_items


def summarise(scored: pa.Table) -> dict:
    nll = np.array(scored.column("nll").to_pylist(), dtype=np.float64)
    tokens = np.array(scored.column("n_tokens").to_pylist(), dtype=np.int64)
    n_bytes = int(sum(scored.column("n_bytes").to_pylist()))
    counted = tokens > 0
    per_doc = np.exp(nll[counted] / tokens[counted])
    total_tokens = int(tokens.sum())
    return {
        "perplexity": math.exp(nll.sum() / total_tokens) if total_tokens else math.nan,
        "bits_per_byte": float(nll.sum() / math.log(2) / n_bytes) if n_bytes else math.nan,
        "documents": int(counted.sum()),
        "tokens": total_tokens,
        "document_perplexity": {
            "p10": float(np.percentile(per_doc, 10)) if len(per_doc) else math.nan,
            "median": float(np.median(per_doc)) if len(per_doc) else math.nan,
            "p90": float(np.percentile(per_doc, 90)) if len(per_doc) else math.nan,
        },
    }



def work(config: EvalConfig, sets: dict[str, pa.Table]) -> list[Work]:
    """Every set in one pass: fewer, fuller batches for each checkpoint."""
    settings = config.perplexity
    return [Work("perplexity", ", ".join(sets), "perplexity",
                 dict(context_length=settings.context_length, stride=settings.stride,
                      add_special_tokens=settings.add_special_tokens),
                 union_of_sets(sets), tuple(c.name for c in config.checkpoints))]


def run(config: EvalConfig, sets: dict[str, pa.Table], scored: dict, output) -> dict:
    results: dict = {}
    for checkpoint in config.checkpoints:
        for name, part in split_into_sets(scored[("perplexity", ", ".join(sets), checkpoint.name)], list(sets)).items():
            write_items(output, "perplexity", name, checkpoint.name, part)
            results.setdefault(name, {})[checkpoint.name] = summarise(part)
    return results
