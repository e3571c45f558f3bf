"""Held-out validation split by document: a document's id hash decides, so no document is ever in
both splits and the split is the same on every rerun and cluster layout."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from factory.prepare.hashing import document_fraction

TRAIN, VALIDATION = "train", "validation"


def split_batch(batch: pa.Table, fraction: float, seed: int) -> pa.Table:
    held_out = document_fraction(batch, f"split-{seed}") < fraction
    return batch.append_column("split", pa.array(np.where(held_out, VALIDATION, TRAIN), pa.string()))
