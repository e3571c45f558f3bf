"""How each benchmark corpus is built from its public source files (benchmarks/data_sources.yaml names
them): one function per `builder:` name, taking the source files' bytes by path (and the entry's `builder_args`)
and returning the table.
The conversions are the ones benchmarks/DATA.md describes; written with the manifest's writer options,
the result has exactly the sha256 the manifest records (that is how a build is checked)."""
from __future__ import annotations

import ast
import csv
import gzip
import io
import json
from typing import Callable

import pyarrow as pa

Sources = dict[str, bytes]  # source path (as in the manifest) -> its bytes


def _csv_rows(data: bytes, path: str) -> list[list[str]]:
    try:
        return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: not a UTF-8 CSV file ({exc})") from exc


def alpaca(sources: Sources) -> pa.Table:
    """Alpaca's JSON array of {instruction, input, output} -> the same columns, order kept."""
    (path, data), = sources.items()
    records = json.loads(data)
    return pa.table({col: pa.array([r[col] for r in records], pa.string())
                     for col in ("instruction", "input", "output")})


MMLU_SCHEMA = pa.schema([("subject", pa.string()), ("question", pa.string()),
                         ("choices", pa.list_(pa.string())), ("answer", pa.int64()), ("split", pa.string())])


def mmlu(sources: Sources) -> pa.Table:
    """MMLU's headerless CSVs (question, A, B, C, D, answer letter), in the manifest's order;
    subject and split come from the file name `<split>/<subject>_<split>.csv`."""
    rows = []
    for path, data in sources.items():
        split = path.rsplit("/", 2)[-2]
        subject = path.rsplit("/", 1)[-1].removesuffix(f"_{split}.csv")
        for n, rec in enumerate(_csv_rows(data, path), 1):
            if len(rec) != 6 or rec[5] not in ("A", "B", "C", "D"):
                raise ValueError(f"{path} row {n}: expected question, 4 choices and an answer letter A-D, got {rec!r}")
            rows.append({"subject": subject, "question": rec[0], "choices": rec[1:5],
                         "answer": "ABCD".index(rec[5]), "split": split})
    return pa.Table.from_pylist(rows, schema=MMLU_SCHEMA)


ARXIV_SCHEMA = pa.schema([("id", pa.string()), ("title", pa.string()), ("text", pa.string()),
                          ("categories", pa.list_(pa.string())), ("source", pa.string()), ("arxiv_id", pa.string())])


def arxiv_kaggle(sources: Sources) -> pa.Table:
    """The Kaggle "arXiv Paper Abstracts" CSV (titles, summaries, terms as a Python list literal, ...)."""
    (path, data), = sources.items()
    header, *records = _csv_rows(data, path)
    col = {name: i for i, name in enumerate(header)}
    rows = []
    for n, rec in enumerate(records):
        try:
            terms = ast.literal_eval(rec[col["terms"]])
        except (ValueError, SyntaxError) as exc:
            raise ValueError(f"{path} row {n + 2} field terms: not a Python list literal ({exc})") from exc
        rows.append({"id": f"arxiv-cs-kaggle-{n:05d}", "title": rec[col["titles"]], "text": rec[col["summaries"]],
                     "categories": list(terms), "source": "arxiv-cs", "arxiv_id": None})
    return pa.Table.from_pylist(rows, schema=ARXIV_SCHEMA)


def _jsonl(data: bytes, path: str) -> list[dict]:
    try:
        return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not UTF-8 JSON lines ({exc})") from exc


def preference(sources: Sources, hh_lines: int) -> pa.Table:
    """Orca DPO pairs (chat messages) then the first `hh_lines` lines of an hh-rlhf split (gzip JSON lines)."""
    (orca_path, orca), (hh_path, hh) = sources.items()
    rows = []
    for n, rec in enumerate(_jsonl(orca, orca_path), 1):
        try:
            user = [m["content"] for m in rec["input"]["messages"] if m["role"] == "user"][-1]
            rows.append({"prompt": user, "chosen": rec["preferred_output"][-1]["content"],
                         "rejected": rec["non_preferred_output"][-1]["content"], "source": "orca_dpo_pairs"})
        except (KeyError, IndexError, TypeError) as exc:
            raise ValueError(f"{orca_path} line {n}: no user message or preferred/non-preferred output ({exc!r})") from exc
    turn = "\n\nAssistant:"
    for rec in _jsonl(gzip.decompress(hh), hh_path)[:hh_lines]:
        # the prompt is the dialogue up to the last assistant turn of `chosen`; both replies follow it
        cut = rec["chosen"].rfind(turn) + len(turn)
        prompt = rec["chosen"][:cut]
        if not rec["rejected"].startswith(prompt):  # the two dialogues part earlier: no shared prompt
            continue
        rows.append({"prompt": prompt.lstrip("\n"), "chosen": rec["chosen"][cut:].strip(),
                     "rejected": rec["rejected"][cut:].strip(), "source": "hh-rlhf-harmless-base"})
    return pa.Table.from_pylist(rows, schema=pa.schema([(c, pa.string()) for c in ("prompt", "chosen", "rejected", "source")]))


BUILDERS: dict[str, Callable[..., pa.Table]] = {
    "alpaca": alpaca,
    "mmlu": mmlu,
    "arxiv_kaggle": arxiv_kaggle,
    "preference": preference,
}
