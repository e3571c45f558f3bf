"""Whole-dataset expectations hold on every row: one bad row among 100,000 is caught by each of them
(thresholds at zero, so a single row is a violation), with that row named."""
from __future__ import annotations

import pyarrow as pa
import pytest
import yaml
from quality_samples import conversation, documents, packed, preferences, prose, publish, replace_row, sft

from quality.config import load_quality_config
from quality.gate import validate

pytestmark = pytest.mark.slow

ROWS = 100_000
BAD = 61_803  # somewhere in the middle, far from any sample's first rows
CPT_CONFIG = {"packing": {"seq_len": 8}, "mixing": {"domain_token_fraction": None}}


@pytest.fixture(scope="module")
def tables():
    return {"documents": documents(ROWS), "sft": sft(ROWS), "preferences": preferences(ROWS), "cpt": packed(ROWS)}


@pytest.fixture(scope="module")
def zero_tolerance(tmp_path_factory):
    path = tmp_path_factory.mktemp("thresholds") / "zero.yaml"
    path.write_text(yaml.safe_dump({
        "documents": {"max_duplicate_rate": 0.0}, "sft": {"max_duplicate_rate": 0.0,
                                                          "task_type_share": {"min": 0.001, "max": 1.0}},
        "preferences": {"max_duplicate_rate": 0.0},
    }))
    return load_quality_config(path)


CASES = [
    ("documents", "not_empty.text", lambda t: replace_row(t, BAD, text="   ")),
    ("documents", "unique_ids", lambda t: replace_row(t, BAD, id="d17")),
    ("documents", "duplicate_rate", lambda t: replace_row(t, BAD, text=prose(17))),
    ("documents", "chars.text", lambda t: replace_row(t, BAD, text="x" * 1_000_001)),
    ("documents", "no_pii", lambda t: replace_row(t, BAD, text=prose(BAD) + " jane@example.com")),
    ("documents", "values_in.domain", lambda t: replace_row(t, BAD, domain="other")),
    ("sft", "roles_alternate", lambda t: replace_row(t, BAD, messages=conversation(BAD)[:1])),
    ("sft", "duplicate_rate", lambda t: replace_row(t, BAD, messages=conversation(17))),
    ("sft", "share.task_type.rare", lambda t: replace_row(t, BAD, task_type="rare")),
    ("sft", "no_pii", lambda t: replace_row(t, BAD, messages=[conversation(BAD)[0], {
        "role": "assistant", "content": "phone 415-555-2671"}])),
    ("preferences", "chosen_differs", lambda t: replace_row(t, BAD, rejected=prose(BAD))),
    ("preferences", "unique_ids", lambda t: replace_row(t, BAD, id="p17")),
    ("cpt", "doc_lengths_sum", lambda t: replace_row(t, BAD, doc_lengths=[3, 3])),
    ("cpt", "rows_full", lambda t: replace_row(t, BAD, input_ids=[1, 2], doc_lengths=[2], n_tokens=2)),
    ("cpt", "n_tokens_matches", lambda t: replace_row(t, BAD, n_tokens=5)),
]


@pytest.mark.parametrize(("kind", "expected", "defect"), CASES, ids=[f"{k}-{e}" for k, e, _ in CASES])
def test_one_bad_row_in_100k_is_caught(tmp_path, tables, zero_tolerance, kind, expected, defect):
    folder = {"cpt": "train"}.get(kind, kind)
    table: pa.Table = defect(tables[kind])
    root = publish(tmp_path / "run", {folder: table}, CPT_CONFIG if kind == "cpt" else {})
    result = validate(kind, root, zero_tolerance)
    failed = {v.check.name: v.check for v in result.failed}
    assert set(failed) == {expected}, result.summary()
    assert result.rows == ROWS
    named = " ".join(failed[expected].examples)
    if expected == "unique_ids":  # the repeated id is shown, once per row holding it
        assert named.count("17") == 2, named
    elif not expected.startswith("share."):
        assert str(BAD) in named, named  # the planted row is shown
