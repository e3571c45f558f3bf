"""Packed CPT batches with per-document attention.

Each packed row holds several documents (``doc_lengths`` sum to the row's length).
Position ids restart at 0 at every document boundary and no attention mask is passed:
transformers then builds block-diagonal causal masks from the position ids (and flash
attention uses them as sequence boundaries), so a document never attends to the one
before it. The first token of each document is not a target: predicting it from the
previous document would leak across the boundary.
"""
from __future__ import annotations

import numpy as np
import torch

IGNORE = -100


def packed_row(input_ids, doc_lengths, length: int, pad_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids = np.asarray(input_ids, dtype=np.int64)[:length]
    lengths = [int(n) for n in doc_lengths]
    if sum(lengths) != len(np.asarray(input_ids)):
        raise ValueError(f"doc_lengths sum to {sum(lengths)} but the row has {len(input_ids)} tokens")
    positions = np.concatenate([np.arange(n) for n in lengths if n > 0])[:length]
    labels = ids.copy()
    labels[positions == 0] = IGNORE
    pad = length - len(ids)
    if pad:
        # padding forms its own "document" (positions from 0), never a target
        ids = np.concatenate([ids, np.full(pad, pad_id)])
        positions = np.concatenate([positions, np.arange(pad)])
        labels = np.concatenate([labels, np.full(pad, IGNORE)])
    return ids, positions, labels


def packed_batch(batch: dict, pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Collate a Ray Data batch of packed rows into ``input_ids``/``position_ids``/``labels``."""
    length = max(len(ids) for ids in batch["input_ids"])
    rows = [packed_row(ids, lens, length, pad_id) for ids, lens in zip(batch["input_ids"], batch["doc_lengths"])]
    ids, positions, labels = (torch.as_tensor(np.stack(col)) for col in zip(*rows))
    return {"input_ids": ids, "position_ids": positions, "labels": labels}
