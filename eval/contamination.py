r"""Decontamination: word n-grams (13 by default) shared between eval items and the training data the
factory and synth produced (documents, SFT, preferences).

Words are ``\w+`` runs (letters, digits and underscores, Unicode-aware) of the lowercased text, so
punctuation and case never hide an overlap; an SFT example counts all its messages' contents, a preference
triple its prompt, chosen and rejected. The eval side is small (bounded by ``max_items``), so its n-gram
hashes go to every worker; a corpus-sized training dataset streams through Ray Data ``map_batches`` and
only the matching hashes (at most the eval side's) come back to the driver, while a small one
(``in_process_max_rows``) is read here: starting a Ray Data pipeline would take longer than the scan.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import xxhash

from core import progress
from core.contracts import data_folders
from core.errors import InputError
from core.parquet import open_parquet, parquet_files, published_data_dir
from core.storage import check_input
from core.ray_runtime import init_ray
from core.watchdog import watched
from eval.config import DecontaminationConfig, EvalRayConfig

WORD = re.compile(r"\w+")
TRAINING_FOLDERS = data_folders("decontamination")  # what a model was trained on, as text
TEXT_COLUMNS = {"documents": ["text"], "sft": ["messages"], "preferences": ["prompt", "chosen", "rejected"]}


def ngram_hashes(text: str, n: int) -> np.ndarray:
    """Stable 64-bit hashes of the text's lowercased word n-grams (the same in every process)."""
    words = WORD.findall(text.lower())
    return np.array([xxhash.xxh64_intdigest(" ".join(words[i:i + n])) for i in range(len(words) - n + 1)],
                    dtype=np.uint64)


def item_text(suite: str, row: dict) -> str:
    """What of an eval item could have leaked: everything a model sees or is scored against."""
    if suite == "multiple_choice":
        return " ".join([row["question"], *row["choices"]])
    if suite == "generation":
        return f"{row['prompt']} {row['reference']}"
    return row.get("text") or row.get("prompt") or ""


def training_kind(names: list[str], path: Path, kind: str) -> str:
    if kind != "auto":
        return kind
    for candidate in ("preferences", "sft", "documents"):
        if all(column in names for column in TEXT_COLUMNS[candidate]):
            return candidate
    raise InputError(f"decontamination.training_data: {path}: cannot tell its kind from its columns {names}; "
                     "set kind: documents, sft or preferences")


def training_texts(batch: pa.Table, kind: str) -> list[str]:
    if kind == "sft":
        return [" ".join(m["content"] or "" for m in messages or []) for messages in batch.column("messages").to_pylist()]
    columns = [batch.column(c).to_pylist() for c in TEXT_COLUMNS[kind]]
    return [" ".join(part or "" for part in parts) for parts in zip(*columns)]


def in_sorted(grams: np.ndarray, sorted_hashes: np.ndarray) -> np.ndarray:
    """Which ``grams`` are in ``sorted_hashes``: a binary search each (np.isin would sort the eval side again
    for every training row)."""
    at = np.minimum(np.searchsorted(sorted_hashes, grams), len(sorted_hashes) - 1)
    return sorted_hashes[at] == grams


def overlaps(batch: pa.Table, eval_hashes: np.ndarray, n: int, kind: str, source: str) -> pa.Table:
    """Training rows in, (n-gram hash, training row id, source) out for every eval n-gram a row contains.
    ``eval_hashes`` is sorted."""
    hashes, ids = [], []
    row_ids = batch.column("id").cast(pa.string()).to_pylist() if "id" in batch.column_names else None
    for row, text in enumerate(training_texts(batch, kind)):
        grams = ngram_hashes(text, n)
        found = np.unique(grams[in_sorted(grams, eval_hashes)])
        hashes.extend(found.tolist())
        ids.extend([row_ids[row] if row_ids else str(row)] * len(found))
    return pa.table({"hash": pa.array(hashes, pa.uint64()), "training_id": pa.array(ids, pa.string()),
                     "training_source": pa.array([source] * len(ids), pa.string())})


def eval_grams(items: dict[tuple[str, str], pa.Table], n: int) -> tuple[dict[int, set], dict]:
    """({n-gram hash: {(suite, set, item_id)}}, {(suite, set): items too short to check})."""
    owners: dict[int, set] = defaultdict(set)
    too_short: dict = {}
    for (suite, set_name), table in items.items():
        short = 0
        for row in table.to_pylist():
            grams = ngram_hashes(item_text(suite, row), n)
            short += len(grams) == 0
            for gram in grams.tolist():
                owners[gram].add((suite, set_name, row["item_id"]))
        too_short[(suite, set_name)] = short
    return owners, too_short


def find_matches(config: DecontaminationConfig, ray_config: EvalRayConfig, hashes: np.ndarray) -> list[pa.Table]:
    """Matching (hash, training id, source) rows from every training dataset."""
    found = []
    for entry in config.training_data:
        check_input(entry.path, "decontamination.training_data.path")  # bucket, key, credentials: named
        files = parquet_files(published_data_dir(entry.path, TRAINING_FOLDERS), "decontamination.training_data.path")
        names = open_parquet(files[0], "decontamination.training_data").schema_arrow.names
        kind = training_kind(names, files[0], entry.kind)
        columns = TEXT_COLUMNS[kind] + (["id"] if "id" in names else [])
        args = dict(eval_hashes=hashes, n=config.ngram, kind=kind, source=entry.path)
        rows = sum(open_parquet(f, "decontamination.training_data").metadata.num_rows for f in files)
        on_ray = ray_config.enabled and rows > config.in_process_max_rows
        if on_ray:
            import ray.data

            init_ray(ray_config)
            # tasks, not actors: nothing to load, and Ray Data sizes them to the free CPUs
            matched = ray.data.read_parquet([str(f) for f in files]).select_columns(columns).map_batches(
                overlaps, fn_kwargs=args, batch_size=config.batch_size, batch_format="pyarrow")
            found.extend(watched(matched.iter_batches(batch_format="pyarrow", batch_size=None),
                                 ray_config.stall_timeout_s, f"decontamination of {entry.path}"))
        else:
            for file in files:
                for batch in open_parquet(file, entry.path).iter_batches(columns=columns, batch_size=config.batch_size):
                    found.append(overlaps(pa.Table.from_batches([batch]), **args))
        progress.say(f"  decontamination: scanned {entry.path} ({kind}, {rows} rows, "
                     f"{'Ray Data' if on_ray else 'in this process'})")
    return found


def find_contamination(items: dict[tuple[str, str], pa.Table], config: DecontaminationConfig,
                       ray_config: EvalRayConfig) -> tuple[pa.Table, dict]:
    """(contaminated items: suite, set, item_id, a training row that shares an n-gram with it, and how many
    (n-gram, training row) matches it has; counts per suite/set)."""
    owners, too_short = eval_grams(items, config.ngram)
    hashes = np.array(sorted(owners), dtype=np.uint64)  # sorted: overlaps() binary-searches it
    example: dict[tuple, tuple[str, str, int]] = {}
    for table in find_matches(config, ray_config, hashes) if len(hashes) else []:
        for gram, training_id, source in zip(table.column("hash").to_pylist(), table.column("training_id").to_pylist(),
                                             table.column("training_source").to_pylist()):
            for owner in owners[gram]:
                first = example.get(owner)
                example[owner] = (first[0], first[1], first[2] + 1) if first else (source, training_id, 1)
    rows = [{"suite": s, "set": n, "item_id": i, "training_source": src, "training_id": tid, "matches": count}
            for (s, n, i), (src, tid, count) in sorted(example.items())]
    contaminated = Counter((suite, set_name) for suite, set_name, _ in example)
    counts = {f"{suite}/{set_name}": {"items": table.num_rows, "contaminated": contaminated[(suite, set_name)],
                                      "too_short_to_check": too_short[(suite, set_name)]}
              for (suite, set_name), table in items.items()}
    schema = pa.schema([("suite", pa.string()), ("set", pa.string()), ("item_id", pa.string()),
                        ("training_source", pa.string()), ("training_id", pa.string()), ("matches", pa.int64())])
    return pa.Table.from_pylist(rows, schema=schema), counts
