"""The review store on its own: leases, stale submissions, edits, versioned schema migrations, the
majority export and the agreement figures."""
from __future__ import annotations

import sqlite3
from pathlib import Path
import time

import pyarrow.parquet as pq
import pytest
from conftest import published
from quality_samples import preferences, publish, replace_row
from review_helpers import review_store

from quality.review.agreement import cohen_kappa, fleiss_kappa, majority
from quality.review.auth import hash_token
from quality.review.export import ExportConfig, export
from quality.review.loading import read_triples
from quality.review.sqlite_store import MIGRATIONS, SCHEMA_VERSION, SqliteReviewStore, migrate
from quality.review.store import StaleSubmission


def people(store, *names):
    return [store.annotator_credentials(name)[0] for name in names]


def test_an_item_is_leased_to_one_annotator_at_a_time(tmp_path):
    store = review_store(tmp_path / "r.sqlite", {"ann": False, "bob": False}, items=2)
    ann, bob = people(store, "ann", "bob")
    first = store.next_lease(ann, lease_s=60)
    assert store.next_lease(ann, lease_s=60).item.id == first.item.id  # a reload shows the same item
    assert store.next_lease(bob, lease_s=60).item.id != first.item.id
    assert store.next_lease(store.annotator_credentials("bob")[0], lease_s=60) is not None


def test_an_expired_lease_goes_to_someone_else_and_the_late_decision_is_refused(tmp_path):
    store = review_store(tmp_path / "r.sqlite", {"ann": False, "bob": False}, items=1)
    ann, bob = people(store, "ann", "bob")
    lease = store.next_lease(ann, lease_s=0.05)
    assert store.next_lease(bob, lease_s=60) is None  # ann holds the only item
    time.sleep(0.1)
    assert store.next_lease(bob, lease_s=60).item.id == lease.item.id
    with pytest.raises(StaleSubmission, match="lease on this item expired"):
        store.submit(ann, lease.item.id, lease.item.version, "keep", None)
    store.submit(bob, lease.item.id, lease.item.version, "swap", None)
    assert [(d.annotator, d.decision) for d in store.decisions()] == [("bob", "swap")]


def test_someone_elses_edit_makes_a_decision_stale(tmp_path):
    store = review_store(tmp_path / "r.sqlite", {"ann": False, "bob": False}, items=1, overlap=2)
    ann, bob = people(store, "ann", "bob")
    seen_by_ann, seen_by_bob = store.next_lease(ann, 60), store.next_lease(bob, 60)
    assert seen_by_ann.item.id == seen_by_bob.item.id  # overlap 2: both may hold it
    store.submit(ann, seen_by_ann.item.id, 1, "edit", "typo fixed", "A better answer.", "A worse answer.")
    with pytest.raises(StaleSubmission, match="edited this item"):
        store.submit(bob, seen_by_bob.item.id, 1, "keep", None)
    again = store.next_lease(bob, 60)
    assert (again.item.version, again.item.chosen) == (2, "A better answer.")
    store.submit(bob, again.item.id, 2, "keep", None)
    with pytest.raises(StaleSubmission, match="already decided"):
        store.submit(bob, again.item.id, 2, "swap", None)


def test_no_item_gets_more_votes_than_its_overlap(tmp_path):
    store = review_store(tmp_path / "r.sqlite", {"ann": False, "bob": False}, items=1)
    ann, bob = people(store, "ann", "bob")
    lease = store.next_lease(ann, 60)
    store.submit(ann, lease.item.id, 1, "keep", None)
    with pytest.raises(StaleSubmission, match="already has its 1 decision"):
        store.submit(bob, lease.item.id, 1, "keep", None)
    # a skip is not a vote: the skipper is not asked again, the item stays open for others
    store2 = review_store(tmp_path / "s.sqlite", {"ann": False, "bob": False}, items=1)
    ann, bob = people(store2, "ann", "bob")
    item = store2.next_lease(ann, 60).item
    store2.submit(ann, item.id, 1, "skip", None)
    assert store2.next_lease(ann, 60) is None and store2.next_lease(bob, 60).item.id == item.id


def test_a_skip_is_seen_not_a_vote_and_the_item_goes_to_an_annotator_who_has_not_seen_it(tmp_path):
    store = review_store(tmp_path / "r.sqlite", {"ann": False, "bob": False}, items=3, overlap=2)
    ann, bob = people(store, "ann", "bob")
    for who in (ann, bob):
        while (lease := store.next_lease(who, 60)) is not None:
            store.submit(who, lease.item.id, lease.item.version, "skip" if lease.item.id == "p0" else "keep", None)
    progress = store.progress(ann)
    assert (progress.mine_votes, progress.mine_skips, progress.mine_seen, progress.mine_left) == (2, 1, 3, 0)
    assert (progress.all_votes, progress.all_needed) == (4, 6)
    assert (progress.unreachable_items, progress.unreachable_votes) == (1, 2)  # everyone who could vote skipped p0
    for name, unreachable in (("cyd", 1), ("dan", 0)):
        store.add_annotator(name, hash_token(name), False)
        (new,) = people(store, name)
        assert store.progress(new).unreachable_votes == unreachable
        lease = store.next_lease(new, 60)
        assert lease.item.id == "p0"  # the skipped item, released
        store.submit(new, lease.item.id, lease.item.version, "keep", None)
    progress = store.progress(ann)
    assert (progress.all_votes, progress.unreachable_items, progress.mine_left) == (6, 0, 0)


def test_an_edit_stores_lf_line_breaks_and_leaves_an_untouched_answer_as_it_was_loaded(tmp_path):
    rows = replace_row(preferences(1), 0, chosen="Line one.\r\nLine two.\n", rejected="Worse\ranswer.").to_pylist()
    store = review_store(tmp_path / "r.sqlite", {"ann": False, "bob": False}, rows=rows, overlap=2)
    ann, bob = people(store, "ann", "bob")
    store.next_lease(ann, 60)
    # as a browser sends the form: both answers, with CRLF line breaks
    store.submit(ann, "p0", 1, "edit", None, "Line one.\r\nLine 2.\r\n", "Worse\r\nanswer.")
    (item,) = store.items()
    assert (item.chosen, item.rejected, item.version) == ("Line one.\nLine 2.\n", "Worse\ranswer.", 2)
    store.next_lease(bob, 60)
    # an edit that changes neither answer is a keep, and leaves the item's version alone
    assert store.submit(bob, "p0", 2, "edit", None, "Line one.\r\nLine 2.\r\n", "Worse\r\nanswer.").decision == "keep"
    assert store.items() == [item]


def test_loading_leaves_out_pairs_with_a_blank_prompt_or_answer(tmp_path):
    table = replace_row(replace_row(preferences(4), 1, chosen="\u200b\r\n"), 2, prompt=" \t")
    pq.write_table(table, tmp_path / "pairs.parquet")
    rows, unusable = read_triples(tmp_path / "pairs.parquet")
    assert [r["id"] for r in rows] == ["p0", "p3"] and unusable == ["p1", "p2"]


def test_loading_a_synth_output_reads_its_current_run_only(tmp_path):
    publish(tmp_path / "prefs", {"preferences": preferences(3)}, {})
    publish(tmp_path / "prefs", {"preferences": replace_row(preferences(2), 0, id="new")}, {})  # a newer version
    rows, _ = read_triples(tmp_path / "prefs")
    assert [r["id"] for r in rows] == ["new", "p1"]


def test_loading_the_same_triples_again_adds_nothing(tmp_path):
    store = review_store(tmp_path / "r.sqlite", {}, items=5)
    assert store.load_items(preferences(7).to_pylist(), overlap=1) == (2, 5)
    assert len(store.items()) == 7


def test_an_old_database_is_migrated_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    assert migrate(db, upto=1) == 0
    db.execute("INSERT INTO annotators (name, token_hash, is_admin, created_at) VALUES ('ann', 'x', 0, 0)")
    db.close()
    store = SqliteReviewStore(path)
    assert store.db.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
    assert store.annotator_credentials("ann") is not None
    indexes = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "decisions_by_item" in indexes
    store.db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(RuntimeError, match="newer than this code"):
        SqliteReviewStore(path)


def test_export_applies_the_majority_swaps_and_edits_and_lists_ties(tmp_path):
    rows = preferences(4).to_pylist()
    store = review_store(tmp_path / "r.sqlite", {"ann": False, "bob": False, "cyd": False}, rows=rows, overlap=3)
    ann, bob, cyd = people(store, "ann", "bob", "cyd")
    plan = {"p0": ("keep", "keep", "swap"), "p1": ("swap", "swap", "keep"), "p2": ("reject_both", "reject_both", "keep"),
            "p3": ("keep", "swap", "reject_both")}
    for who, column in ((ann, 0), (bob, 1), (cyd, 2)):
        for _ in plan:
            lease = store.next_lease(who, 60)
            store.submit(who, lease.item.id, lease.item.version, plan[lease.item.id][column], None)
    manifest = export(store, ExportConfig(db=str(tmp_path / "r.sqlite"), output_dir=str(tmp_path / "out")))
    out = {r["id"]: r for r in pq.read_table(published(tmp_path / "out") / "preferences").to_pylist()}
    assert set(out) == {"p0", "p1"}
    assert (out["p0"]["chosen"], out["p0"]["rejected"]) == (rows[0]["chosen"], rows[0]["rejected"])
    assert (out["p1"]["chosen"], out["p1"]["rejected"]) == (rows[1]["rejected"], rows[1]["chosen"])
    assert out["p1"]["chosen_model"] == rows[1]["rejected_model"] and out["p1"]["annotators"] == ["ann", "bob"]
    assert all(r["review_status"] == "approved" for r in out.values())
    assert manifest["outcome"] == {"kept": 1, "swapped": 1, "rejected_both": 1, "tie": 1}
    assert [t["item"] for t in manifest["ties"]] == ["p3"]
    assert manifest["annotators"] == ["ann", "bob", "cyd"] and manifest["quality"]["success"]
    assert {d["item"] for d in manifest["agreement"]["disputed"]} == {"p0", "p1", "p2", "p3"}


def test_agreement_figures_match_the_textbook():
    from sklearn.metrics import cohen_kappa_score

    a = ["keep", "keep", "swap", "keep", "reject_both", "swap", "keep", "keep"]
    b = ["keep", "swap", "swap", "keep", "reject_both", "keep", "keep", "swap"]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-4)
    # Fleiss (1971) as on Wikipedia: 10 subjects, 14 raters, 5 categories -> 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    votes = {f"item{i}": {f"r{r}": f"c{c}" for r, c in enumerate(c for c, n in enumerate(row) for _ in range(n))}
             for i, row in enumerate(table)}
    assert fleiss_kappa(votes) == pytest.approx(0.210, abs=1e-3)
    assert majority({"a": "keep", "b": "swap"}) is None and majority({"a": "keep", "b": "keep", "c": "swap"}) == "keep"


def test_train_dpo_takes_the_export_as_it_is(tmp_path):
    """The export is a DPO input: `data.train` may name it, and the approved filter keeps every pair."""
    import train_fixtures as tf

    from train.config import load_train_config
    from train.data import input_files
    from train.methods import get_stage

    store = review_store(tmp_path / "r.sqlite", {"ann": False}, items=3)
    (ann,) = people(store, "ann")
    while (lease := store.next_lease(ann, 60)) is not None:
        store.submit(ann, lease.item.id, lease.item.version, "keep", None)
    export(store, ExportConfig(db=str(tmp_path / "r.sqlite"), output_dir=str(tmp_path / "reviewed")))
    model = tf.tiny_model_dir(tmp_path / "model")
    path = tf.write_train_config(tmp_path / "dpo.yaml", model_path=model, data_path=tmp_path / "reviewed",
                                 root=tmp_path, name="dpo", dpo={"review_status": ["approved"]})
    config = load_train_config(path, "dpo")
    files = input_files(config, get_stage("dpo"))
    assert [Path(f).parent.name for f in files] == ["preferences"]  # the Data Docs beside it are not data
    assert set(pq.read_table(files, columns=["review_status"])["review_status"].to_pylist()) == {"approved"}
