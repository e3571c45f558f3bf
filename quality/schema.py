"""Schema and types of every file against the kind's contract (core.contracts), from Parquet footers
only. Large and regular variants of a type (large_string, string) count as the same."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from core.parquet import open_parquet
from quality.checks import Check
from quality.datasets import file_name


def normalised(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(kind):
        return pa.string()
    if pa.types.is_large_list(kind) or pa.types.is_list(kind):
        return pa.list_(normalised(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([(f.name, normalised(f.type)) for f in kind])
    return kind


def read_schema(file: Path) -> pa.Schema:
    return open_parquet(file, "PATH").schema_arrow


def schema_problems(file: Path, contract: pa.Schema) -> list[str]:
    schema = read_schema(file)
    problems = []
    for wanted in contract:
        if wanted.name not in schema.names:
            problems.append(f"{file_name(file)}: no column {wanted.name!r}")
        elif normalised(schema.field(wanted.name).type) != normalised(wanted.type):
            problems.append(f"{file_name(file)}: {wanted.name} is {schema.field(wanted.name).type}, not {wanted.type}")
    return problems


def schema_check(files: list[Path], contract: pa.Schema, examples: int) -> tuple[Check, set[str]]:
    """The check (files whose schema breaks the contract) and the contract columns every file has."""
    problems, present = [], set(contract.names)
    for file in files:
        found = schema_problems(file, contract)
        problems += found
        if found:
            present &= set(read_schema(file).names)
    broken_files = len({p.split(":", 1)[0] for p in problems})
    check = Check("schema", f"every file has the contract's columns with their types ({', '.join(contract.names)})",
                  broken_files, 0, 0, problems[:examples], how="every file's Parquet footer")
    return check, present
