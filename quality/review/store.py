"""What the review app needs from storage, as an interface another database can fill
(``SqliteReviewStore`` is the one this package ships)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

DECISIONS = ("keep", "swap", "reject_both", "skip", "edit")
VOTES = {"keep": "keep", "edit": "keep", "swap": "swap", "reject_both": "reject_both"}  # skip is not a vote


class StaleSubmission(Exception):
    """A decision that no longer applies (lease lost, item edited, already decided): refused, not stored."""


@dataclass(frozen=True)
class Annotator:
    id: int
    name: str
    is_admin: bool


@dataclass(frozen=True)
class Item:
    id: str
    prompt: str
    chosen: str
    rejected: str
    version: int  # bumped by every edit; a submission names the version it saw
    overlap: int  # independent decisions it needs
    row: dict  # the preference row it came from, kept whole for the export


@dataclass(frozen=True)
class Lease:
    item: Item
    chosen_left: bool  # the order shown: is the current chosen answer on the left?
    leased_at: float
    expires_at: float


@dataclass(frozen=True)
class Decision:
    item_id: str
    annotator: str
    decision: str
    chosen_left: bool
    item_version: int
    comment: str | None
    leased_at: float
    decided_at: float


@dataclass(frozen=True)
class Progress:
    mine_done: int  # my votes (skips not counted)
    mine_left: int  # items I could still be given
    all_done: int  # votes given, capped at each item's overlap
    all_needed: int  # sum of every item's overlap


@dataclass(frozen=True)
class Session:
    id: str
    annotator: Annotator
    csrf: str
    expires_at: float


class ReviewStore(Protocol):
    def add_annotator(self, name: str, token_hash: str, is_admin: bool) -> Annotator: ...
    def annotator_credentials(self, name: str) -> tuple[Annotator, str] | None: ...
    def annotator_counts(self) -> list[dict]: ...
    def load_items(self, rows: list[dict], overlap: int) -> tuple[int, int]: ...
    def next_lease(self, annotator: Annotator, lease_s: float) -> Lease | None: ...
    def submit(self, annotator: Annotator, item_id: str, version: int, decision: str, comment: str | None,
               chosen: str | None, rejected: str | None) -> Decision: ...
    def progress(self, annotator: Annotator) -> Progress: ...
    def decisions(self) -> list[Decision]: ...
    def items(self) -> list[Item]: ...
    def create_session(self, annotator: Annotator, session_id: str, csrf: str, expires_at: float) -> None: ...
    def session(self, session_id: str, now: float) -> Session | None: ...
    def end_session(self, session_id: str) -> None: ...
