"""Tolerant parsing of a model's JSON answer, checked against the template's schema.

Servers without structured output wrap JSON in prose or code fences; we take the first JSON
object in the text. Anything that still does not fit becomes a reason string (the caller
writes a reject row with the raw text), never an exception and never an empty example.
"""
from __future__ import annotations

import json
from typing import Any

from core.blank import is_blank

_TYPES = {"string": str, "number": (int, float), "integer": int, "array": list, "object": dict, "boolean": bool}


def first_json_object(text: str) -> Any:
    decoder = json.JSONDecoder()
    for start, char in enumerate(text):
        if char == "{":
            try:
                return decoder.raw_decode(text, start)[0]
            except json.JSONDecodeError:
                continue
    raise ValueError("no JSON object in the answer")


def schema_problem(value: Any, schema: dict, where: str = "$") -> str | None:
    """The first way ``value`` breaks the (small) JSON-schema subset the templates use, or None."""
    kind = schema.get("type")
    if kind and (not isinstance(value, _TYPES[kind]) or (kind in ("number", "integer") and isinstance(value, bool))):
        return f"{where}: expected {kind}, got {type(value).__name__}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where}: {value!r} not one of {schema['enum']}"
    if kind == "string" and is_blank(value):
        return f"{where}: blank string"
    if kind in ("number", "integer"):
        if "minimum" in schema and value < schema["minimum"] or "maximum" in schema and value > schema["maximum"]:
            return f"{where}: {value} outside [{schema.get('minimum')}, {schema.get('maximum')}]"
    if kind == "array":
        if len(value) < schema.get("minItems", 0):
            return f"{where}: fewer than {schema['minItems']} items"
        for i, item in enumerate(value):
            if problem := schema_problem(item, schema.get("items", {}), f"{where}[{i}]"):
                return problem
    if kind == "object":
        for key in schema.get("required", []):
            if key not in value:
                return f"{where}: missing key {key!r}"
        for key, sub in schema.get("properties", {}).items():
            if key in value and (problem := schema_problem(value[key], sub, f"{where}.{key}")):
                return problem
    return None


def parse_json_answer(text: str, schema: dict) -> tuple[Any, tuple[str, str] | None]:
    """(parsed value, None) or (None, (reason, detail))."""
    try:
        value = first_json_object(text)
    except ValueError as exc:
        return None, ("malformed_json", str(exc))
    problem = schema_problem(value, schema)
    return (None, ("schema_mismatch", problem)) if problem else (value, None)
