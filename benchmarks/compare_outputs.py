"""Compare two output folders of a job byte for byte, run ids and timings aside.

  python benchmarks/compare_outputs.py BEFORE_DIR AFTER_DIR

For a factory run, prepare, synth, train or eval output or a recipe folder, made twice (before and after
a change). One line per file, `same` or `DIFFERS: <first difference>`; exit 1 on any difference.
  Parquet      a folder's Parquet files are one table (Ray names files and splits blocks differently
               every run): same column names and types, then the same rows in any order; a difference
               names the column whose values differ (else the rows are paired differently).
  JSON         equal after dropping the VOLATILE_KEYS below and records of Ray-written files (RAY_FILE), and
               masking the VOLATILE_TEXT patterns in strings; a difference names its key path.
  text         (.md, .txt, .html, .csv, .jsonl, .yaml, ...) equal line by line after masking VOLATILE_TEXT.
  safetensors  the same tensor names, dtypes, shapes and values.
  other        the same bytes.
File paths are masked too (quality data docs sit in folders named by their time).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq

# JSON keys whose values differ on every run by design, dropped wherever they appear, with why.
VOLATILE_KEYS = {
    "run_id": "a new id per run (start time + random suffix)",
    "upstream_run_id": "the run id of the job this one read",
    "started_at": "wall-clock time",
    "finished_at": "wall-clock time",
    "created_at": "wall-clock time",
    "validated_at": "wall-clock time",
    "timings_s": "durations of the stages",
    "duration_s": "duration",
    "wall_s": "duration",
    "elapsed_s": "duration",
    "code_version": "the git commit that ran, which a before/after comparison changes on purpose",
    "config_hash": "hash of the config, which holds the absolute input and output paths",
    "hostname": "the machine",
    "host": "the machine",
    "node_ip": "the machine",
}

# A file Ray Data wrote: dataset id + random uuid + block number. Its name, size and how many there are follow
# Ray's block split, so JSON records of such files (a job's `inputs` from an upstream run) are dropped; the
# upstream folder's own comparison covers their content.
RAY_FILE = re.compile(r"\b[0-9A-Za-z]{22}_[0-9a-f]{32}_\d{6}-\d+\.parquet\b")

# Patterns masked in text, JSON strings and file paths, with why; first match wins.
VOLATILE_TEXT = [
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?"), "<time>"),  # ISO time
    (re.compile(r"\d{8}T\d{6}(\.\d+)?Z(-[0-9a-f]{6})?"), "<run-id>"),  # run ids, GX validation folders
    (RAY_FILE, "<ray-file>.parquet"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),  # GX ids
    (re.compile(r"'_run_time_sort': \d+(\.\d+)?"), "'_run_time_sort': <time>"),  # GX's index sorts runs by epoch
    (re.compile(r"config hash `[0-9a-f]+`"), "config hash <hash>"),  # config_hash (above) as prepare's report.md says it
    (re.compile(r"\b[0-9a-f]{40}\b"), "<commit>"),  # git commits (code_version in reports)
    (re.compile(r"(?<![\w.~])/(?:[\w.@+-]+/)+"), "<dir>/"),  # absolute paths keep only their file name
    (re.compile(r"\b\d+(\.\d+)?\s?(s|ms|sec|seconds|min)\b"), "<duration>"),  # timings in reports
]

TEXT_SUFFIXES = {".md", ".txt", ".html", ".htm", ".csv", ".tsv", ".jsonl", ".yaml", ".yml", ".log", ".css", ".svg"}


def mask(text: str, roots: tuple[str, ...] = ()) -> str:
    """The text with the compared folders themselves (they differ by construction) and VOLATILE_TEXT masked."""
    for root in roots:
        text = text.replace(root, "<output>")
    for pattern, placeholder in VOLATILE_TEXT:
        text = pattern.sub(placeholder, text)
    return text


def _files(root: Path) -> dict[str, list[Path]]:
    """Masked relative path -> files; a folder's Parquet files share one key, `folder/*.parquet`."""
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        key = str(rel.parent / "*.parquet") if path.suffix == ".parquet" else str(rel)
        groups[mask(key)].append(path)
    return groups


def _cell(value) -> str:
    """A canonical, hashable form of one cell (exact floats, NaN equal to NaN, lists and maps by value)."""
    return json.dumps(value, sort_keys=True, default=repr)


def compare_parquet(before: list[Path], after: list[Path]) -> str | None:
    a, b = pq.read_table(before), pq.read_table(after)
    if a.schema.names != b.schema.names or a.schema.types != b.schema.types:
        fa = {f.name: str(f.type) for f in a.schema}
        fb = {f.name: str(f.type) for f in b.schema}
        changed = sorted(n for n in fa.keys() | fb.keys() if fa.get(n) != fb.get(n))
        if not changed:
            return f"column order {a.schema.names} != {b.schema.names}"
        return "columns differ: " + ", ".join(f"{n} {fa.get(n, '(absent)')} -> {fb.get(n, '(absent)')}" for n in changed)
    if a.num_rows != b.num_rows:
        return f"{a.num_rows} rows -> {b.num_rows} rows"
    # each column as a multiset first, so a changed cell is named by its column
    cols = {}
    for name in a.column_names:
        ca = Counter(map(_cell, a.column(name).to_pylist()))
        cb = Counter(map(_cell, b.column(name).to_pylist()))
        cols[name] = (ca, cb)
        if ca != cb:
            gone, new = ca - cb, cb - ca
            return (f"column {name}: {sum(gone.values())} value(s) only before, e.g. {_short(next(iter(gone), ''))}; "
                    f"{sum(new.values())} only after, e.g. {_short(next(iter(new), ''))}")
    rows_a = Counter(zip(*(map(_cell, a.column(n).to_pylist()) for n in a.column_names)))
    rows_b = Counter(zip(*(map(_cell, b.column(n).to_pylist()) for n in b.column_names)))
    if rows_a != rows_b:
        return f"same values in every column, but {sum((rows_a - rows_b).values())} row(s) pair them differently"
    return None


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _drop_volatile(value, roots):
    if isinstance(value, dict):
        return {k: _drop_volatile(v, roots) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_drop_volatile(v, roots) for v in value if not _is_ray_file_record(v)]
    return mask(value, roots) if isinstance(value, str) else value


def _is_ray_file_record(value) -> bool:
    return isinstance(value, dict) and isinstance(value.get("path"), str) and bool(RAY_FILE.search(value["path"]))


def _first_json_difference(a, b, where: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in b or key not in a:
                return f"{where}{key}: only {'before' if key in a else 'after'}"
            found = _first_json_difference(a[key], b[key], f"{where}{key}.")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_json_difference(x, y, f"{where}[{i}].")
            if found:
                return found
        return None if len(a) == len(b) else f"{where.rstrip('.')}: {len(a)} items -> {len(b)} items"
    if a == b and type(a) is type(b):
        return None
    return f"{where.rstrip('.')}: {_short(json.dumps(a))} -> {_short(json.dumps(b))}"


def compare_json(before: Path, after: Path, roots) -> str | None:
    return _first_json_difference(_drop_volatile(json.loads(before.read_text()), roots),
                                  _drop_volatile(json.loads(after.read_text()), roots))


def compare_text(before: Path, after: Path, roots) -> str | None:
    a = mask(before.read_text(errors="replace"), roots).splitlines()
    b = mask(after.read_text(errors="replace"), roots).splitlines()
    for n, (x, y) in enumerate(zip(a, b), 1):
        if x != y:  # show both lines from a little before their first differing character
            col = next((i for i, (c, d) in enumerate(zip(x, y)) if c != d), min(len(x), len(y)))
            start = max(0, col - 20)
            cut = (lambda t: ("..." if start else "") + _short(t[start:]))
            return f"line {n}, column {col + 1}: {cut(x)!r} -> {cut(y)!r}"
    return None if len(a) == len(b) else f"{len(a)} lines -> {len(b)} lines"


def compare_safetensors(before: Path, after: Path) -> str | None:
    from safetensors.torch import load_file  # torch reads every dtype (bfloat16 too); imported only when needed
    import torch

    a, b = load_file(str(before)), load_file(str(after))
    if a.keys() != b.keys():
        return f"tensors only before: {sorted(a.keys() - b.keys())}, only after: {sorted(b.keys() - a.keys())}"
    for name in sorted(a):
        x, y = a[name], b[name]
        if x.dtype != y.dtype or x.shape != y.shape:
            return f"tensor {name}: {x.dtype} {tuple(x.shape)} -> {y.dtype} {tuple(y.shape)}"
        if not torch.equal(x, y):
            return f"tensor {name}: values differ (max |diff| {(x.float() - y.float()).abs().max().item():g})"
    return None


def compare_bytes(before: Path, after: Path) -> str | None:
    a, b = before.read_bytes(), after.read_bytes()
    if a == b:
        return None
    at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"bytes differ from offset {at} ({len(a)} -> {len(b)} bytes)"


def compare_group(key: str, before: list[Path], after: list[Path], roots: tuple[str, ...]) -> str | None:
    if key.endswith("*.parquet"):
        return compare_parquet(before, after)
    if len(before) != 1 or len(after) != 1:  # two files whose paths mask alike
        return f"{len(before)} file(s) -> {len(after)} file(s) with this masked path"
    suffix = before[0].suffix.lower()
    if suffix == ".json":
        return compare_json(before[0], after[0], roots)
    if suffix == ".safetensors":
        return compare_safetensors(before[0], after[0])
    if suffix in TEXT_SUFFIXES:
        return compare_text(before[0], after[0], roots)
    return compare_bytes(before[0], after[0])


def compare_dirs(before: Path, after: Path, out=sys.stdout) -> int:
    """Print one line per file; the number of differences."""
    a, b = _files(before), _files(after)
    roots = (str(before.resolve()), str(after.resolve()), str(before), str(after))
    differences = 0
    for key in sorted(a.keys() | b.keys()):
        if key not in b or key not in a:
            result = f"only in {before if key in a else after}"
        else:
            try:
                result = compare_group(key, a[key], b[key], roots)
            except (OSError, ValueError, UnicodeDecodeError) as exc:  # unreadable or corrupt on one side
                result = f"cannot compare: {exc}"
        differences += result is not None
        print(f"{key}: {'same' if result is None else 'DIFFERS: ' + result}", file=out, flush=True)
    return differences


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    for folder in (args.before, args.after):
        if not folder.is_dir():
            parser.error(f"{folder}: not a folder")
    differences = compare_dirs(args.before, args.after)
    print(f"{differences} difference(s)" if differences else "no differences", file=sys.stderr)
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
