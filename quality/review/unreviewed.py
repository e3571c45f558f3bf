"""The review step's output before any annotator has decided: a published run (so every recipe step has one)
holding no pairs, whose manifest says that DPO trains on the judge-approved pairs of the named synth
preferences run, unreviewed, and how many pairs wait in the review database. A copy of those pairs would
add nothing but bytes: the manifest names the exact run, which stays where it is."""
from __future__ import annotations

from pathlib import Path

from core.publish import published_run_ref
from core.run import PublishedRun
from quality.review.export import ExportConfig


def publish_unreviewed(config: ExportConfig, preferences_dir: str, items: int) -> dict:
    """Publishes ``config.output_dir`` naming the preferences run DPO uses as they are; returns the manifest."""
    pairs = published_run_ref(preferences_dir) or {"path": str(preferences_dir), "run_id": None}
    run = PublishedRun(config.output_dir, config, "review (no decisions yet)", overwrite=True,
                       upstream={"preferences_run": pairs, "review_db": {"decisions": 0, "items": items}})
    with run.writing([Path(config.db)]):
        run.manifest.update({
            "dpo_pairs": "judge_approved",
            "note": "no annotator decision yet: DPO trains on every judge-approved pair of preferences_run, "
                    "unreviewed; this run holds no pairs of its own",
            "items": items, "decisions": 0, "outputs": {},
        })
    return run.manifest
