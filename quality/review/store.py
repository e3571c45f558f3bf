"""What the review app needs from storage, as an interface another database can fill
(``SqliteReviewStore`` is the one this package ships)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from core.blank import is_blank

DECISIONS = ("keep", "swap", "reject_both", "skip", "edit")
VOTES = {"keep": "keep", "edit": "keep", "swap": "swap", "reject_both": "reject_both"}  # skip is not a vote


class StaleSubmission(Exception):
    """A decision that no longer applies (lease lost, item edited, already decided): refused, not stored."""


class InvalidEdit(ValueError):
    """An edit that would store an unusable pair (a blank answer, two identical answers): refused, not stored."""


def unified_line_breaks(text: str) -> str:
    """``text`` with LF line breaks only: browsers submit a textarea's text with CRLF, whatever was shown."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def applied_edit(chosen_now: str, rejected_now: str, chosen: str, rejected: str) -> tuple[str, str] | None:
    """The answers an edit leaves, or None when it changed neither. An answer whose text is unchanged, line
    breaks aside, stays byte for byte as it is (the form sends back both answers, with CRLF line breaks); an
    edited one is stored with LF line breaks. Raises InvalidEdit for a blank answer or two identical ones."""
    texts = {}
    for name, now, sent in (("chosen", chosen_now, chosen), ("rejected", rejected_now, rejected)):
        sent = unified_line_breaks(sent)
        if is_blank(sent):  # as the reviews gate judges it: invisible characters are blank too
            raise InvalidEdit(f"the {name} answer is blank after the edit; an edit needs both answers "
                              "(use Reject both to drop the pair)")
        texts[name] = now if sent == unified_line_breaks(now) else sent
    if unified_line_breaks(texts["chosen"]) == unified_line_breaks(texts["rejected"]):
        raise InvalidEdit("the chosen and rejected answers are the same after the edit; a preference needs "
                          "two different answers")
    if (texts["chosen"], texts["rejected"]) == (chosen_now, rejected_now):
        return None
    return texts["chosen"], texts["rejected"]


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
    """What the progress bars count. A skip is not a vote: the skipper has seen the item and is not shown it
    again, and the item goes to another annotator."""
    mine_votes: int  # items I decided (keep, swap, reject both, edit)
    mine_skips: int  # items I skipped
    mine_left: int  # items I have not seen that still need votes (some may be with others right now)
    all_votes: int  # votes given, each item's capped at its overlap
    all_needed: int  # sum of every item's overlap
    unreachable_votes: int  # votes still needed on items that too few annotators are left to see (all skipped them)
    unreachable_items: int  # how many items those are

    @property
    def mine_seen(self) -> int:
        return self.mine_votes + self.mine_skips


@dataclass(frozen=True)
class ReviewSnapshot:
    """Everything an export reads, from one consistent point in time, and ``facts`` that identify that point
    (decisions, last decision id, items, schema version) for the export's manifest."""
    items: list[Item]
    decisions: list[Decision]
    facts: dict


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
    def facts(self) -> dict: ...
    def snapshot(self) -> ReviewSnapshot: ...
    def create_session(self, annotator: Annotator, session_id: str, csrf: str, expires_at: float) -> None: ...
    def session(self, session_id: str, now: float) -> Session | None: ...
    def end_session(self, session_id: str) -> None: ...
