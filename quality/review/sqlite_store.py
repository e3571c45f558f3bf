"""The review store in SQLite (WAL mode): one connection per thread, every write in a
``BEGIN IMMEDIATE`` transaction, so concurrent submissions queue instead of losing each other, and
``synchronous=FULL``: a decision is on disk before the annotator is told it was saved.
The schema is versioned: ``MIGRATIONS[i]`` takes a database from version i to i + 1.

The database is only ever opened through SQLite (``core.sqlite_db``): an export describes what it read with
``snapshot()``, from inside one read transaction, never by hashing the file (which would drop the locks of
every connection of the process, and lose decisions)."""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from core import sqlite_db
from quality.review.store import (
    Annotator, Decision, Item, Lease, Progress, ReviewSnapshot, Session, StaleSubmission, applied_edit,
)

MIGRATIONS = [
    # 1: the first schema
    """
    CREATE TABLE annotators (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, token_hash TEXT NOT NULL,
                             is_admin INTEGER NOT NULL, created_at REAL NOT NULL);
    CREATE TABLE items (id TEXT PRIMARY KEY, prompt TEXT NOT NULL, chosen TEXT NOT NULL, rejected TEXT NOT NULL,
                        version INTEGER NOT NULL DEFAULT 1, overlap INTEGER NOT NULL, row_json TEXT NOT NULL,
                        loaded_at REAL NOT NULL);
    CREATE TABLE leases (item_id TEXT NOT NULL REFERENCES items(id), annotator_id INTEGER NOT NULL REFERENCES annotators(id),
                         leased_at REAL NOT NULL, expires_at REAL NOT NULL, PRIMARY KEY (item_id, annotator_id));
    CREATE TABLE decisions (id INTEGER PRIMARY KEY, item_id TEXT NOT NULL REFERENCES items(id),
                            annotator_id INTEGER NOT NULL REFERENCES annotators(id), decision TEXT NOT NULL,
                            chosen_left INTEGER NOT NULL, item_version INTEGER NOT NULL, comment TEXT,
                            edited_chosen TEXT, edited_rejected TEXT, leased_at REAL NOT NULL, decided_at REAL NOT NULL,
                            UNIQUE (item_id, annotator_id));
    CREATE TABLE sessions (id TEXT PRIMARY KEY, annotator_id INTEGER NOT NULL REFERENCES annotators(id),
                           csrf TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL);
    """,
    # 2: indexes for fetch-next and progress under load (every request counts votes and leases per item)
    """
    CREATE INDEX decisions_by_item ON decisions (item_id, decision);
    CREATE INDEX leases_by_item ON leases (item_id, expires_at);
    CREATE INDEX sessions_by_expiry ON sessions (expires_at);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)

VOTES_OF = "(SELECT COUNT(*) FROM decisions d WHERE d.item_id = i.id AND d.decision != 'skip')"
OTHER_LEASES = "(SELECT COUNT(*) FROM leases l WHERE l.item_id = i.id AND l.expires_at > :now AND l.annotator_id != :me)"
NOT_MINE = "NOT EXISTS (SELECT 1 FROM decisions d WHERE d.item_id = i.id AND d.annotator_id = :me)"


def chosen_left(annotator_id: int, item_id: str) -> bool:
    """The order an annotator sees an item in: random across items and annotators, the same on every reload."""
    return hashlib.sha256(f"{annotator_id}:{item_id}".encode()).digest()[0] % 2 == 0


def migrate(db: sqlite3.Connection, upto: int = SCHEMA_VERSION) -> int:
    """Bring the database to schema version ``upto``; returns the version it was at."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        found = row[0] if row else 0
        if found > SCHEMA_VERSION:
            raise RuntimeError(f"the review database is at schema version {found}, newer than this code's "
                               f"{SCHEMA_VERSION}; upgrade domain-factory")
        for script in MIGRATIONS[found:upto]:
            for statement in filter(str.strip, script.split(";")):
                db.execute(statement)
        if row:
            db.execute("UPDATE schema_version SET version = ?", (max(found, upto),))
        else:
            db.execute("INSERT INTO schema_version VALUES (?)", (upto,))
        db.execute("COMMIT")
        return found
    except BaseException:
        db.execute("ROLLBACK")
        raise


class SqliteReviewStore:
    def __init__(self, path: str | Path, key: str = "--db"):
        """``key``: how the user named the database (a flag or config key), for the error that refuses it."""
        self.path = str(path)
        sqlite_db.refuse_network_filesystem(self.path, key, "keep the review database on a local disk of the machine "
                                            "that serves the app, and publish its exports to shared storage")
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        # writers of this process queue on a lock: SQLite's own busy wait sleeps in coarse steps (up to
        # 100 ms), which under many concurrent requests would show as a long latency tail
        self._writing = threading.Lock()
        migrate(self.db)

    @property
    def db(self) -> sqlite3.Connection:
        if not hasattr(self._local, "db"):
            db = sqlite_db.connect(self.path, synchronous="FULL")
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return self._local.db

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before reading, so two writers never act on the same snapshot
        (BEGIN IMMEDIATE also holds off writers in other processes sharing the file)."""
        db = self.db
        with self._writing:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # --- annotators ---------------------------------------------------------------------------------

    def add_annotator(self, name: str, token_hash: str, is_admin: bool) -> Annotator:
        with self.write() as db:
            if db.execute("SELECT 1 FROM annotators WHERE name = ?", (name,)).fetchone():
                raise ValueError(f"annotator {name!r} exists already")
            cursor = db.execute("INSERT INTO annotators (name, token_hash, is_admin, created_at) VALUES (?, ?, ?, ?)",
                                (name, token_hash, int(is_admin), time.time()))
        return Annotator(cursor.lastrowid, name, is_admin)

    def annotator_credentials(self, name: str) -> tuple[Annotator, str] | None:
        row = self.db.execute("SELECT * FROM annotators WHERE name = ?", (name,)).fetchone()
        return (Annotator(row["id"], row["name"], bool(row["is_admin"])), row["token_hash"]) if row else None

    def annotator_counts(self) -> list[dict]:
        """Per annotator: decisions by kind, votes (all but skips) and the mean seconds from shown to decided."""
        found = {row["name"]: {"name": row["name"], "admin": bool(row["is_admin"]), "decisions": {}, "votes": row["votes"],
                               "seconds_per_item": round(row["seconds"], 2) if row["seconds"] is not None else None}
                 for row in self.db.execute("""
                    SELECT a.name, a.is_admin, COUNT(d.id) AS votes, AVG(d.decided_at - d.leased_at) AS seconds
                    FROM annotators a LEFT JOIN decisions d ON d.annotator_id = a.id AND d.decision != 'skip'
                    GROUP BY a.id ORDER BY a.name""")}
        for row in self.db.execute("""SELECT a.name, d.decision, COUNT(*) AS n FROM decisions d
                                      JOIN annotators a ON a.id = d.annotator_id GROUP BY a.id, d.decision"""):
            found[row["name"]]["decisions"][row["decision"]] = row["n"]
        return list(found.values())

    # --- items, leases, decisions -------------------------------------------------------------------

    def load_items(self, rows: list[dict], overlap: int) -> tuple[int, int]:
        """Adds the rows not loaded before (by id); returns (added, already there)."""
        added = 0
        with self.write() as db:
            for row in rows:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO items (id, prompt, chosen, rejected, overlap, row_json, loaded_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (row["id"], row["prompt"], row["chosen"], row["rejected"], overlap,
                     json.dumps(row, ensure_ascii=False, default=str), time.time()))
                added += cursor.rowcount
        return added, len(rows) - added

    @staticmethod
    def _item(row: sqlite3.Row) -> Item:
        return Item(row["id"], row["prompt"], row["chosen"], row["rejected"], row["version"], row["overlap"],
                    json.loads(row["row_json"]))

    def next_lease(self, annotator: Annotator, lease_s: float) -> Lease | None:
        """The item this annotator holds a live lease on, else a new lease on the next item that still needs
        votes beyond those given and leased to others (items closest to done first)."""
        now, me = time.time(), annotator.id
        with self.write() as db:
            held = db.execute(f"""
                SELECT i.*, l.leased_at, l.expires_at FROM leases l JOIN items i ON i.id = l.item_id
                WHERE l.annotator_id = :me AND l.expires_at > :now AND {NOT_MINE}
                ORDER BY l.leased_at LIMIT 1""", {"me": me, "now": now}).fetchone()
            if held:
                return Lease(self._item(held), chosen_left(me, held["id"]), held["leased_at"], held["expires_at"])
            row = db.execute(f"""
                SELECT i.* FROM items i
                WHERE {NOT_MINE} AND i.overlap > {VOTES_OF} + {OTHER_LEASES}
                ORDER BY {VOTES_OF} DESC, i.rowid LIMIT 1""", {"me": me, "now": now}).fetchone()
            if row is None:
                return None
            db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)", (row["id"], me, now, now + lease_s))
        return Lease(self._item(row), chosen_left(me, row["id"]), now, now + lease_s)

    def submit(self, annotator: Annotator, item_id: str, version: int, decision: str, comment: str | None,
               chosen: str | None = None, rejected: str | None = None) -> Decision:
        now, me = time.time(), annotator.id
        with self.write() as db:
            item = db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
            if item is None:
                raise StaleSubmission(f"there is no item {item_id[:80]!r}")
            if db.execute("SELECT 1 FROM decisions WHERE item_id = ? AND annotator_id = ?", (item_id, me)).fetchone():
                raise StaleSubmission("you have already decided this item; your first decision stands")
            if item["version"] != version:
                raise StaleSubmission("another annotator edited this item after it was shown to you; "
                                      "it is shown again with the edit")
            votes = db.execute("SELECT COUNT(*) FROM decisions WHERE item_id = ? AND decision != 'skip'",
                               (item_id,)).fetchone()[0]
            others = db.execute("SELECT COUNT(*) FROM leases WHERE item_id = ? AND expires_at > ? AND annotator_id != ?",
                                (item_id, now, me)).fetchone()[0]
            lease = db.execute("SELECT leased_at, expires_at FROM leases WHERE item_id = ? AND annotator_id = ?",
                               (item_id, me)).fetchone()
            if decision != "skip" and votes >= item["overlap"]:
                raise StaleSubmission(f"this item already has its {item['overlap']} decision(s)")
            if (lease is None or lease["expires_at"] <= now) and decision != "skip" and votes + others >= item["overlap"]:
                raise StaleSubmission("your lease on this item expired and it was given to another annotator")
            if decision == "edit":
                texts = applied_edit(item["chosen"], item["rejected"], chosen or "", rejected or "")
                if texts is None:  # both answers as they were: a keep, and the item's version stays
                    decision, texts = "keep", (None, None)
                chosen, rejected = texts
            else:
                chosen = rejected = None
            leased_at = lease["leased_at"] if lease else now
            left = chosen_left(me, item_id)
            db.execute("INSERT INTO decisions (item_id, annotator_id, decision, chosen_left, item_version, comment, "
                       "edited_chosen, edited_rejected, leased_at, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (item_id, me, decision, int(left), version, comment, chosen, rejected, leased_at, now))
            db.execute("DELETE FROM leases WHERE item_id = ? AND annotator_id = ?", (item_id, me))
            if decision == "edit":
                db.execute("UPDATE items SET chosen = ?, rejected = ?, version = version + 1 WHERE id = ?",
                           (chosen, rejected, item_id))
        return Decision(item_id, annotator.name, decision, left, version, comment, leased_at, now)

    def progress(self, annotator: Annotator) -> Progress:
        params = {"me": annotator.id}
        mine = dict(self.db.execute("SELECT decision = 'skip', COUNT(*) FROM decisions WHERE annotator_id = :me "
                                    "GROUP BY decision = 'skip'", params).fetchall())
        mine_left = self.db.execute(f"SELECT COUNT(*) FROM items i WHERE {NOT_MINE} AND i.overlap > {VOTES_OF}",
                                    params).fetchone()[0]
        votes, needed = self.db.execute(f"SELECT COALESCE(SUM(MIN({VOTES_OF}, i.overlap)), 0), "
                                        "COALESCE(SUM(i.overlap), 0) FROM items i").fetchone()
        # votes an item needs beyond what the annotators who have not seen it could give (whoever voted on or
        # skipped an item is not shown it again): only skips make this positive
        unreachable, items = self.db.execute(f"""
            SELECT COALESCE(SUM(short), 0), COUNT(*) FROM (
                SELECT i.overlap - {VOTES_OF} - (SELECT COUNT(*) FROM annotators a WHERE NOT EXISTS (
                    SELECT 1 FROM decisions d WHERE d.item_id = i.id AND d.annotator_id = a.id)) AS short
                FROM items i WHERE EXISTS (SELECT 1 FROM decisions d WHERE d.item_id = i.id AND d.decision = 'skip'))
            WHERE short > 0""").fetchone()
        return Progress(mine.get(0, 0), mine.get(1, 0), mine_left, votes, needed, unreachable, items)

    def decisions(self) -> list[Decision]:
        rows = self.db.execute("""SELECT d.*, a.name FROM decisions d JOIN annotators a ON a.id = d.annotator_id
                                  ORDER BY d.id""").fetchall()
        return [Decision(r["item_id"], r["name"], r["decision"], bool(r["chosen_left"]), r["item_version"], r["comment"],
                         r["leased_at"], r["decided_at"]) for r in rows]

    def items(self) -> list[Item]:
        return [self._item(row) for row in self.db.execute("SELECT * FROM items ORDER BY rowid")]

    def facts(self) -> dict:
        """What identifies the database's state, in one statement: decisions, the last decision's id and time,
        items, schema version (the file is never hashed)."""
        found = dict(self.db.execute("""SELECT (SELECT COUNT(*) FROM decisions) AS decisions,
                                               (SELECT MAX(id) FROM decisions) AS last_decision_id,
                                               (SELECT MAX(decided_at) FROM decisions) AS last_decision_at,
                                               (SELECT COUNT(*) FROM items) AS items,
                                               (SELECT version FROM schema_version) AS schema_version""").fetchone())
        return {"path": str(Path(self.path).resolve()), **found}

    def snapshot(self) -> ReviewSnapshot:
        """Items, decisions and their ``facts``, read in one transaction: a decision committed meanwhile is in all
        of them or in none."""
        db = self.db
        db.execute("BEGIN")  # deferred: in WAL mode its first read fixes what every read after it sees
        try:
            facts = {**self.facts(), "read_as": "one SQLite read transaction: these counts and the rows exported "
                                                "(the file is not hashed)"}
            snapshot = ReviewSnapshot(self.items(), self.decisions(), facts)
        finally:
            db.execute("COMMIT")
        return snapshot

    # --- sessions -----------------------------------------------------------------------------------

    def create_session(self, annotator: Annotator, session_id: str, csrf: str, expires_at: float) -> None:
        with self.write() as db:
            db.execute("DELETE FROM sessions WHERE expires_at <= ?", (time.time(),))
            db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)", (session_id, annotator.id, csrf, time.time(),
                                                                       expires_at))

    def session(self, session_id: str, now: float) -> Session | None:
        row = self.db.execute("""SELECT s.*, a.name, a.is_admin FROM sessions s JOIN annotators a ON a.id = s.annotator_id
                                 WHERE s.id = ? AND s.expires_at > ?""", (session_id, now)).fetchone()
        if row is None:
            return None
        return Session(row["id"], Annotator(row["annotator_id"], row["name"], bool(row["is_admin"])), row["csrf"],
                       row["expires_at"])

    def end_session(self, session_id: str) -> None:
        with self.write() as db:
            db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
