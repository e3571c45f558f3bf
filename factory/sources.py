"""Input sources: find their files, check them before any work, read them as contract rows.

Schema problems (missing file or column, unreadable Parquet) raise ``InputError`` naming
the file and the config key before Ray does anything. Row problems (null text, bad JSON,
bytes that are not UTF-8, a missing id) become rejected rows with their reason.
"""
from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from core.errors import InputError
from core.parquet import open_parquet
from core.storage import Location, StorageConfig, expand, is_uri, local_location, locate, read_bytes
from factory.config import SourceConfig
from factory.documents import IN_FLIGHT_SCHEMA
from factory.stages.base import Stage, StageContext

READ_STAGE = "read"  # the stage of rows that could not be read as documents
JSONL = (".jsonl", ".json", ".ndjson")
COMPRESSIONS = (".gz", ".zst")  # JSONL may be compressed; the name says how, and pyarrow decompresses it
EXTENSIONS = {"parquet": (".parquet",), "jsonl": JSONL + tuple(e + c for e in JSONL for c in COMPRESSIONS)}
ALL_EXTENSIONS = sum(EXTENSIONS.values(), ())


def source_files(source: SourceConfig, index: int, storage: StorageConfig | None = None) -> list[Location]:
    """Every file a source's path names (files, folders, globs; local or URIs), checked to exist."""
    key = f"sources[{index}] ({source.name}).path"
    patterns = [source.path] if isinstance(source.path, str) else source.path
    files: list[Location] = []
    for pattern in patterns:
        path = Path(pattern)
        if is_uri(pattern):
            files += expand(locate(pattern, key, storage), key, ALL_EXTENSIONS)
        elif path.is_dir():
            files += [local_location(p) for p in sorted(path.rglob("*")) if p.is_file() and p.name.endswith(ALL_EXTENSIONS)]
        elif any(ch in pattern for ch in "*?["):
            files += [local_location(p) for p in sorted(glob.glob(pattern, recursive=True)) if Path(p).is_file()]
        elif path.is_file():
            files.append(local_location(path))
        else:
            raise InputError(f"{key}: {pattern} does not exist")
    if not files:
        raise InputError(f"{key}: no input files match {source.path}")
    return files


def file_labels(files: list[Location]) -> dict[str, str]:
    """How a file is named in fallback ids and reject details: its name, or its path below the
    files' common folder where two files share a name (so fallback ids never repeat). Keyed by the path
    Ray's reader gives (absolute locally, bucket/key on object storage)."""
    absolute = [f.path for f in files]
    if len({Path(f).name for f in absolute}) == len(absolute):
        return {f: Path(f).name for f in absolute}
    root = os.path.commonpath([os.path.dirname(f) for f in absolute])
    return {f: os.path.relpath(f, root) for f in absolute}


def source_format(source: SourceConfig, files: list[Location], index: int) -> str:
    if source.format:
        return source.format
    for fmt, extensions in EXTENSIONS.items():
        if all(f.name.endswith(extensions) for f in files):
            return fmt
    raise InputError(
        f"sources[{index}] ({source.name}).format: cannot infer from extensions "
        f"{sorted({Path(f.name).suffix for f in files})}; set format: parquet or jsonl"
    )


def check_parquet(source: SourceConfig, files: list[Location], index: int) -> int:
    """Read every footer (cheap): a corrupt file or a missing column fails here. Returns the row count."""
    rows = 0
    wanted = {source.text_column: "text_column", **{c: "meta_columns" for c in source.meta_columns}}
    if source.id_column is None:
        raise InputError(f"sources[{index}] ({source.name}).id_column: required for Parquet sources")
    wanted[source.id_column] = "id_column"
    for path in files:
        metadata = open_parquet(path, f"sources[{index}] ({source.name}).path").metadata
        names = metadata.schema.to_arrow_schema().names
        for column, key in wanted.items():
            if column not in names:
                raise InputError(
                    f"{path.uri}: column {column!r} (sources[{index}].{key}) not found; the file has columns {names}"
                )
        rows += metadata.num_rows
    return rows


def jsonl_records(data: bytes):
    """(line number, raw line) for every non-blank line: what counts as one input record."""
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            yield lineno, line


def check_jsonl(source: SourceConfig, files: list[Location], index: int) -> int:
    rows = 0
    for path in files:
        data = read_bytes(path, f"sources[{index}] ({source.name}).path")  # .gz and .zst come decompressed
        records = list(jsonl_records(data))
        rows += len(records)
        first = next(iter(records), None)
        if first is None:
            continue
        try:
            record = json.loads(first[1])
        except ValueError:
            continue  # a bad first line is a row problem: it becomes a reject
        if isinstance(record, dict) and source.text_column not in record:
            raise InputError(
                f"{path.uri}: line {first[0]} has no field {source.text_column!r} "
                f"(sources[{index}].text_column); fields are {sorted(record)}"
            )
    return rows


def meta_json(table: pa.Table, columns: list[str]) -> pa.Array:
    if not columns:
        return pa.array(["{}"] * table.num_rows, pa.string())
    rows = table.select(columns).to_pylist()
    return pa.array([json.dumps(r, ensure_ascii=False, default=str) for r in rows], pa.string())


def decode_text(column: pa.ChunkedArray) -> tuple[list[str | None], list[str | None]]:
    """Text as Python strings plus a reason per row for text that is not valid UTF-8."""
    raw = column.combine_chunks()
    if pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type):
        try:
            raw.validate(full=True)
            return raw.to_pylist(), [None] * len(raw)
        except pa.ArrowInvalid:
            raw = raw.view(pa.binary() if pa.types.is_string(raw.type) else pa.large_binary())
    if not (pa.types.is_binary(raw.type) or pa.types.is_large_binary(raw.type)):
        return [None] * len(raw), ["text_not_string"] * len(raw)
    texts, reasons = [], []
    for value in raw.to_pylist():
        if value is None:
            texts.append(None)
            reasons.append(None)
            continue
        try:
            texts.append(value.decode("utf-8"))
            reasons.append(None)
        except UnicodeDecodeError as exc:
            texts.append(None)
            reasons.append(f"non_utf8:{exc.reason} at byte {exc.start}")
    return texts, reasons


def contract_table(ids, texts, source: SourceConfig, meta, reasons) -> pa.Table:
    n = len(ids)
    reject_reason = [r.split(":", 1)[0] if r else None for r in reasons]
    reject_detail = [r.split(":", 1)[1] if r and ":" in r else None for r in reasons]
    return pa.Table.from_arrays(
        [
            pa.array(ids, pa.string()),
            pa.array(texts, pa.string()),
            pa.array([source.name] * n, pa.string()),
            pa.array([source.domain] * n, pa.string()),
            meta,
            pa.array([READ_STAGE if r else None for r in reasons], pa.string()),
            pa.array(reject_reason, pa.string()),
            pa.array(reject_detail, pa.string()),
        ],
        schema=IN_FLIGHT_SCHEMA,
    )


def text_digest(text: str | None) -> str:
    return xxhash.xxh3_64_hexdigest((text or "").encode("utf-8"))


def parquet_batch_to_contract(batch: pa.Table, source: SourceConfig) -> pa.Table:
    ids = pc.cast(batch[source.id_column], pa.string()).to_pylist()
    texts, reasons = decode_text(batch[source.text_column])
    for i, doc_id in enumerate(ids):
        if doc_id is None and reasons[i] is None:
            reasons[i] = "missing_id:null id"
    # Ray Data does not say which row of its file a row was, so a missing id is replaced by the text's hash
    ids = [doc_id if doc_id is not None else f"{source.name}:missing-id:{text_digest(texts[i])}"
           for i, doc_id in enumerate(ids)]
    return contract_table(ids, texts, source, meta_json(batch, source.meta_columns), reasons)


def jsonl_file_to_contract(batch: dict, source: SourceConfig, labels: dict[str, str]) -> pa.Table:
    """One JSONL file (read as bytes by Ray) to contract rows, one per non-blank line."""
    ids, texts, metas, reasons = [], [], [], []
    for path, data in zip(batch["path"], batch["bytes"]):
        stem = labels.get(path) or labels.get(os.path.abspath(path), path)
        for lineno, line in jsonl_records(data):  # Ray decompresses .gz and .zst as it reads
            fallback_id = f"{stem}:{lineno}"
            reason = None
            try:
                text_line = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                text_line = line.decode("utf-8", errors="replace")
                reason = f"non_utf8:{stem} line {lineno}: {exc.reason} at byte {exc.start}"
            try:
                record = json.loads(text_line)
                if not isinstance(record, dict):
                    raise ValueError(f"expected a JSON object, got {type(record).__name__}")
            except ValueError as exc:
                record = {}
                reason = reason or f"invalid_json:{stem} line {lineno}: {exc}"
            doc_id = fallback_id if source.id_column is None else record.get(source.id_column)
            if doc_id is None:
                doc_id = fallback_id
                reason = reason or f"missing_id:{stem} line {lineno}: no {source.id_column!r}"
            text = record.get(source.text_column)
            if text is not None and not isinstance(text, str):
                reason = reason or f"text_not_string:{stem} line {lineno}: {type(text).__name__}"
                text = None
            ids.append(str(doc_id))
            texts.append(None if reason else text)
            metas.append(json.dumps({c: record.get(c) for c in source.meta_columns}, ensure_ascii=False, default=str))
            reasons.append(reason)
    return contract_table(ids, texts, source, pa.array(metas, pa.string()), reasons)


def plan_sources(sources: list[SourceConfig], storage: StorageConfig | None = None) -> list[dict]:
    """Check every source before work starts; returns files, format and exact row count per source."""
    plans = []
    for index, source in enumerate(sources):
        files = source_files(source, index, storage)
        fmt = source_format(source, files, index)
        rows = check_parquet(source, files, index) if fmt == "parquet" else check_jsonl(source, files, index)
        plans.append({"source": source, "files": files, "format": fmt, "rows": rows})
    return plans


def read_source(plan: dict):
    """A Ray dataset of contract rows for one planned source."""
    import ray.data

    source: SourceConfig = plan["source"]
    parts = []
    for filesystem, files in by_filesystem(plan["files"]):  # one Ray read takes one filesystem
        paths = [f.path for f in files]
        if plan["format"] == "parquet":
            columns = list(dict.fromkeys([source.id_column, source.text_column, *source.meta_columns]))
            ds = ray.data.read_parquet(paths, filesystem=filesystem).select_columns(columns)
            parts.append(ds.map_batches(parquet_batch_to_contract, batch_format="pyarrow", fn_kwargs={"source": source}))
        else:
            ds = ray.data.read_binary_files(paths, include_paths=True, filesystem=filesystem)
            labels = plan.get("labels") or file_labels(plan["files"])  # a block group's: its source's labels
            parts.append(ds.map_batches(jsonl_file_to_contract, batch_size=1, batch_format="numpy",
                                        fn_kwargs={"source": source, "labels": labels}))
    return parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]


def by_filesystem(files: list[Location]) -> list[tuple[object, list[Location]]]:
    """The files grouped by the filesystem that holds them, in their order (a source may list a local
    folder and a bucket)."""
    groups: list[tuple[object, list[Location]]] = []
    for f in files:
        group = next((g for g in groups if g[0].equals(f.filesystem)), None)
        if group is None:
            groups.append((f.filesystem, [f]))
        else:
            group[1].append(f)
    return groups


class ReadSources(Stage):
    """The first stage: every planned source as contract rows, in one Ray dataset re-blocked so that
    small files still spread over all CPUs. Rows that cannot be read are marked rejected here."""

    name = READ_STAGE

    def __init__(self, plans: list[dict], rows_per_block: int):
        self.plans, self.rows_per_block = plans, rows_per_block

    @classmethod
    def from_config(cls, config):
        """Plans (and so checks) every source: a missing file or column is an error before any work."""
        return cls(plan_sources(config.sources, config.storage), config.ray.rows_per_block)

    def apply(self, ds, context: StageContext):
        return self.read(self.plans)

    def read(self, plans: list[dict]):
        datasets = [read_source(plan) for plan in plans]
        ds = datasets[0].union(*datasets[1:]) if len(datasets) > 1 else datasets[0]
        return ds.repartition(target_num_rows_per_block=self.rows_per_block)

    def block_groups(self, min_rows: int) -> list[list[list[int]]]:
        """The input cut into groups of consecutive files, each about ``min_rows`` rows or more (by each
        source's rows per file), a group a list of ``[source index, first file, end]``: the units a killed run
        resumes by, as datatrove's tasks are files. A group may span sources; a file is never cut."""
        groups, group, rows = [], [], 0.0
        for index, plan in enumerate(self.plans):
            per_file = plan["rows"] / max(len(plan["files"]), 1)
            for file in range(len(plan["files"])):
                if group and group[-1][0] == index:
                    group[-1][2] = file + 1
                else:
                    group.append([index, file, file + 1])
                rows += per_file
                if rows >= min_rows:
                    groups.append(group)
                    group, rows = [], 0.0
        return groups + [group] if group else groups

    def read_group(self, group: list[list[int]]):
        """The rows of one block group (see ``block_groups``); fallback ids name files as among all the
        source's files."""
        return self.read([{**self.plans[index], "files": self.plans[index]["files"][start:end],
                           "labels": file_labels(self.plans[index]["files"])} for index, start, end in group])
