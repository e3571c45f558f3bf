"""Preference triples (a synth preferences output, or any Parquet in the preference contract) in as
review items. Loading the same triples again adds nothing: items are keyed by the triple's id."""
from __future__ import annotations

from pathlib import Path

from core import progress
from core.blank import is_blank
from core.contracts import data_folders
from core.parquet import open_parquet, parquet_files, published_data_dir, require_columns
from core.storage import check_input
from quality.review.store import ReviewStore

NEEDED = ("id", "prompt", "chosen", "rejected")


def read_triples(path: str | Path) -> tuple[list[dict], list[str]]:
    """(rows to review, ids of rows that cannot be reviewed: a blank prompt or answer, as the gate sees blank)."""
    check_input(path, "PREFERENCES_DIR")  # a URI's bucket, key and credentials, before anything else
    files = parquet_files(published_data_dir(path, data_folders("review")), "PREFERENCES_DIR")
    require_columns(files, {column: "the preference contract" for column in NEEDED}, "PREFERENCES_DIR")
    rows, unusable = [], []
    for file in files:  # a preference set is what people review: thousands of rows, held in memory
        for row in open_parquet(file, "PREFERENCES_DIR").read().to_pylist():
            if all(isinstance(row.get(c), str) and not is_blank(row[c]) for c in NEEDED):
                rows.append(row)
            else:
                unusable.append(str(row.get("id")))
    return rows, unusable


def load(store: ReviewStore, path: str | Path, overlap: int) -> tuple[int, int]:
    rows, unusable = read_triples(path)
    added, existing = store.load_items(rows, overlap)
    # what loading did, and the rows it could not use: the command's whole outcome, shown even with -q
    progress.summary(f"loaded {added} new item(s) from {path} with overlap {overlap}; {existing} were loaded before")
    if unusable:
        progress.summary(f"left out {len(unusable)} row(s) with a blank id, prompt or answer: "
                         f"{', '.join(unusable[:5])}" + (" ..." if len(unusable) > 5 else ""))
    return added, existing
