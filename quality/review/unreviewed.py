"""The review step's output before any annotator has decided: a published run (so every recipe step has one)
holding no pairs, whose manifest says that DPO trains on the judge-approved pairs of the named synth
preferences run, unreviewed, and how many pairs wait in the review database. A copy of those pairs would
add nothing but bytes: the manifest names the exact run, which stays where it is."""
from __future__ import annotations

from core.publish import published_run_ref
from core.run import PublishedRun
from quality.review.export import ExportConfig


def publish_unreviewed(config: ExportConfig, preferences_dir: str, review_db: dict) -> dict:
    """Publishes ``config.output_dir`` naming the preferences run DPO uses as they are; returns the manifest.
    ``review_db``: what the database held (``ReviewStore.snapshot().facts``; its file is never hashed)."""
    items = review_db["items"]
    pairs = published_run_ref(preferences_dir) or {"path": str(preferences_dir), "run_id": None}
    run = PublishedRun(config.output_dir, config, "review (no decisions yet)", overwrite=True,
                       upstream={"preferences_run": pairs, "review_db": review_db})
    with run.writing([]):
        run.manifest.update({
            "dpo_pairs": "judge_approved",
            "note": "no annotator decision yet: DPO trains on every judge-approved pair of preferences_run, "
                    "unreviewed; this run holds no pairs of its own",
            "items": items, "decisions": 0, "outputs": {},
        })
    return run.manifest
