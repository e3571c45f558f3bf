"""The prepare run's closing count: nothing lost, nothing written twice."""
from __future__ import annotations

from core.errors import AccountingError
from factory.prepare.pack_splits import PackedSplits


def check_counts(n_input: int, n_chosen: int, n_left_out: int, packed: PackedSplits) -> None:
    """Every input document chosen or left out, every chosen one packed, every token written once;
    fails the run (unpublished) if not."""
    problems = []
    if n_chosen + n_left_out != n_input:
        problems.append(f"input {n_input} != chosen {n_chosen} + left out by mixing {n_left_out}")
    packed_docs = sum(split.stats.docs for split in packed.splits.values())
    if packed_docs != n_chosen:
        problems.append(f"packed {packed_docs} documents, chose {n_chosen}")
    for name, split in packed.splits.items():
        if split.written_tokens != split.stats.tokens:
            problems.append(f"{name}: wrote {split.written_tokens} tokens, documents hold {split.stats.tokens}")
    if problems:
        raise AccountingError("prepare accounting broken, output not published:\n  " + "\n  ".join(problems))
