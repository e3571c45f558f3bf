"""Document lengths as counts over fixed log-spaced bins, so the report's length plot never needs one
number per document on the driver: bins are counted per block in Ray (or per document in the packing
scan) and the counts added up; the plot merges neighbouring bins down to a readable number."""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

BINS_PER_OCTAVE = 32  # each bin is 2**(1/32) ~ 2% wide; 1,024 bins in all
OCTAVES = 32  # up to 2**32 tokens; longer documents are counted in the last bin
LENGTH_EDGES = 2.0 ** (np.arange(OCTAVES * BINS_PER_OCTAVE + 1) / BINS_PER_OCTAVE)  # bin i: [edge i, edge i+1)
N_LENGTH_BINS = len(LENGTH_EDGES) - 1
LENGTH_BIN = "length_bin"


def length_bins(n_tokens) -> np.ndarray:
    """The bin of each length (below 1 -> bin 0, past the last edge -> the last bin)."""
    bins = np.searchsorted(LENGTH_EDGES, np.asarray(n_tokens, dtype=np.float64), side="right") - 1
    return np.clip(bins, 0, N_LENGTH_BINS - 1).astype(np.int64)


def length_bin_batch(batch: pa.Table) -> pa.Table:
    """map_batches: only the ``length_bin`` of each document (its ``n_tokens``)."""
    return pa.table({LENGTH_BIN: pa.array(length_bins(batch["n_tokens"].to_numpy()), pa.int64())})


def plot_bins(histograms: list[dict[int, int]], most: int = 40) -> tuple[np.ndarray, list[np.ndarray]]:
    """Edges spanning the non-empty bins of all ``histograms`` ({bin: documents}), neighbouring bins
    merged so that at most ``most`` remain, and each histogram's counts over those edges."""
    used = sorted(set().union(*histograms))
    low, high = (used[0], used[-1] + 1) if used else (0, 1)
    step = math.ceil((high - low) / most)
    starts = np.arange(low, high, step)
    edges = LENGTH_EDGES[np.append(starts, min(starts[-1] + step, N_LENGTH_BINS))]
    counts = [np.bincount((np.fromiter(h, dtype=np.int64, count=len(h)) - low) // step,
                          weights=np.fromiter(h.values(), dtype=np.float64, count=len(h)), minlength=len(starts))
              for h in histograms]
    return edges, counts
