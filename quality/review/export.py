"""The reviewed preference dataset: each item's majority vote applied (keep, or swap chosen and
rejected; edits are in the item's texts), pairs rejected by the majority dropped, ties left out and
listed; published as a new version of the output, with a manifest of who decided what and how they agreed, after
its quality gate (kind ``reviews``). ``python -m train dpo`` with ``review_status: [approved]`` trains on it."""
from __future__ import annotations

from collections import Counter

from pydantic import Field

from core import progress
from core.config import StrictModel
from core.contracts import REVIEWED_PREFERENCE
from core.parquet import write_rows
from core.run import PublishedRun
from quality.config import GateSettings
from quality.gate import gate_before_publish
from quality.review.agreement import agreement_report, majority, votes_by_item
from quality.review.store import Item, ReviewSnapshot, ReviewStore

FOLDER = "preferences"
SWAPPED = [("chosen", "rejected"), ("chosen_model", "rejected_model"), ("chosen_temperature", "rejected_temperature"),
           ("chosen_score", "rejected_score")]


class ExportConfig(StrictModel):
    db: str = Field(description="The review database.")
    output_dir: str
    quality: GateSettings = GateSettings()


def reviewed_row(item: Item, vote: str, annotators: list[str], votes: int) -> dict:
    row = {name: item.row.get(name) for name in REVIEWED_PREFERENCE.names}
    row.update(prompt=item.prompt, chosen=item.chosen, rejected=item.rejected)  # edits applied
    if vote == "swap":
        for a, b in SWAPPED:
            row[a], row[b] = row[b], row[a]
    row.update(review_status="approved", annotators=annotators, review_votes=votes)
    return row


def reviewed(snapshot: ReviewSnapshot) -> tuple[list[dict], dict]:
    """(rows, summary): the majority decision of every item with votes."""
    votes = votes_by_item(snapshot.decisions)
    rows, ties, outcome = [], [], Counter()
    for item in snapshot.items:
        item_votes = votes.get(item.id, {})
        if not item_votes:
            outcome["no_decision"] += 1
            continue
        vote = majority(item_votes)
        if vote is None:
            ties.append({"item": item.id, "votes": item_votes})
            outcome["tie"] += 1
        elif vote == "reject_both":
            outcome["rejected_both"] += 1
        else:
            winners = sorted(name for name, v in item_votes.items() if v == vote)
            rows.append(reviewed_row(item, vote, winners, len(winners)))
            outcome["swapped" if vote == "swap" else "kept"] += 1
    return rows, {"outcome": dict(outcome), "ties": ties}


def export(store: ReviewStore, config: ExportConfig, *, overwrite: bool = False) -> dict:
    snapshot = store.snapshot()
    decisions = snapshot.decisions
    # the same database with new decisions is exported again; unchanged, it is a no-op. The manifest names the
    # database by what it held (snapshot.facts), not by its bytes: hashing a live database loses its decisions
    run = PublishedRun(config.output_dir, config, "review export", overwrite=overwrite,
                       upstream={"review_db": snapshot.facts})
    if run.finished:
        return run.finished
    gate = gate_before_publish("reviews", config.quality)
    with run.writing([], before_publish=gate) as partial:
        rows, summary = reviewed(snapshot)
        written = write_rows(rows, REVIEWED_PREFERENCE, partial / FOLDER)
        run.manifest.update({
            "annotators": sorted({d.annotator for d in decisions}),
            "decision_counts": dict(Counter(d.decision for d in decisions)),
            "agreement": agreement_report(decisions),
            **summary,
            # why items are not in the export (the gate names them when too few are)
            "rejects_by_reason": {why: n for why, n in summary["outcome"].items() if why not in ("kept", "swapped")},
            "outputs": {FOLDER: {"path": FOLDER, "rows": written}},
        })
    progress.summary(f"exported {written} approved pair(s) to {run.folder}/{FOLDER}: {summary['outcome']}; "
                     f"{len(summary['ties'])} tie(s) left out (listed in the manifest)")
    return run.manifest
