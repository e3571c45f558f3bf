"""Durable answer cache: SQLite (WAL), one row per answered request, committed as each answer arrives.

A rerun, or a run resumed after a crash, looks every request up here first and sends only
the ones without a stored answer. Several Ray actors may share one file (WAL + busy timeout).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from core import sqlite_db


def request_key(model: str, messages: list[dict], params: dict, prompt_version: str) -> str:
    """Identity of a request: what the model is asked, how it samples, and which prompt version asked."""
    canonical = json.dumps({"model": model, "messages": messages, "params": params, "prompt_version": prompt_version},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredAnswer:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None  # "length": cut at max_tokens (None in caches written before it was kept)


class AnswerCache:
    def __init__(self, path: str | Path, key: str = "cache_path"):
        """``key``: the config key that named the file, for the error that refuses a network filesystem."""
        sqlite_db.refuse_network_filesystem(path, key, "set it to a file on a local disk of the machine that runs "
                                                       "the job")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # NORMAL: an answer survives a killed process; an OS crash may lose the last few, which a rerun asks again
        self.db = sqlite_db.connect(path, synchronous="NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, model TEXT, prompt_version TEXT, "
            "text TEXT NOT NULL, prompt_tokens INTEGER, completion_tokens INTEGER, stored_at REAL)"
        )
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(answers)")}
        if "finish_reason" not in columns:  # a cache from before the column: its answers keep working
            self.db.execute("ALTER TABLE answers ADD COLUMN finish_reason TEXT")

    def get(self, key: str) -> StoredAnswer | None:
        row = self.db.execute("SELECT text, prompt_tokens, completion_tokens, finish_reason FROM answers WHERE key = ?",
                              (key,)).fetchone()
        return StoredAnswer(*row) if row else None

    def put(self, key: str, model: str, prompt_version: str, answer: StoredAnswer) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO answers (key, model, prompt_version, text, prompt_tokens, completion_tokens, "
            "stored_at, finish_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (key, model, prompt_version, answer.text, answer.prompt_tokens, answer.completion_tokens, time.time(),
             answer.finish_reason),
        )

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        self.db.close()
