"""The quality suites: good data of every kind passes; one crafted defect at a time fails, and the
summary names the expectation it breaks, with the observed value and the offending row."""
from __future__ import annotations

import pyarrow as pa
import pytest
import yaml
from conftest import published
from quality_samples import (
    conversation, cpt_documents, documents, packed, preferences, prose, publish, replace_row, sft,
)

from quality.config import load_quality_config
from quality.gate import validate

N = 50
CPT_CONFIG = {"packing": {"seq_len": 8}, "mixing": {"domain_token_fraction": 0.8}}


def thresholds(tmp_path, **sections):
    path = tmp_path / "thresholds.yaml"
    path.write_text(yaml.safe_dump(sections))
    return load_quality_config(path)


def dataset(tmp_path, kind: str, table: pa.Table, side: pa.Table | None = None):
    """A published run of ``kind`` holding ``table`` (and, for cpt, its document table)."""
    if kind == "cpt":
        return publish(tmp_path / "run", {"train": table, "documents": side if side is not None else
                                          cpt_documents(800, 200)}, CPT_CONFIG)
    folder = {"documents": "documents", "sft": "sft", "preferences": "preferences", "reviews": "preferences"}[kind]
    return publish(tmp_path / "run", {folder: table}, {})


def failing(result) -> set[str]:
    return {v.check.name for v in result.failed}


GOOD = {
    "documents": lambda: documents(N), "cpt": lambda: packed(N), "sft": lambda: sft(N),
    "preferences": lambda: preferences(N), "reviews": lambda: preferences(N, status="approved"),
}


@pytest.mark.parametrize("kind", list(GOOD))
def test_good_data_passes_and_every_check_is_judged(tmp_path, kind):
    result = validate(kind, dataset(tmp_path, kind, GOOD[kind]()))
    assert result.success, result.summary()
    assert all(v.success for v in result.verdicts), result.summary()
    assert result.rows == N and (published(tmp_path / "run") / "quality" / "index.html").is_file()


def long_text(chars: int) -> str:
    return ("word " * (chars // 5 + 1))[:chars]


# (kind, the expectation that must fail, the defect, thresholds, others that may fail with it)
DEFECTS = [
    ("documents", "schema", lambda: documents(N).set_column(6, "dup_cluster_size", pa.array(["1"] * N)), {}, set()),
    ("documents", "not_empty.text", lambda: replace_row(documents(N), 7, text="   "), {}, {"chars.text"}),
    ("documents", "not_empty.id", lambda: replace_row(documents(N), 7, id=None), {}, set()),
    ("documents", "unique_ids", lambda: replace_row(documents(N), 7, id="d6"), {}, set()),
    ("documents", "duplicate_rate", lambda: replace_row(documents(N), 7, text=prose(6)), {}, set()),
    ("documents", "chars.text", lambda: replace_row(documents(N), 7, text=long_text(300)),
     {"documents": {"text_chars": {"min": 1, "max": 250}}}, set()),
    ("documents", "no_pii", lambda: replace_row(documents(N), 7, text=prose(7) + " Mail jane.doe@example.com."), {},
     set()),
    ("documents", "no_pii", lambda: replace_row(documents(N), 7, text=prose(7) + " Server 8.8.8.8 was down."), {},
     set()),
    ("documents", "no_pii", lambda: replace_row(documents(N), 7, text=prose(7) + " Call 415-555-2671 today."), {},
     set()),
    ("documents", "values_in.domain", lambda: replace_row(documents(N), 7, domain="legal"), {}, set()),
    ("cpt", "schema", lambda: packed(N).set_column(1, "doc_lengths", packed(N)["doc_lengths"].cast(
        pa.list_(pa.int64()))), {}, set()),
    ("cpt", "n_tokens_matches", lambda: replace_row(packed(N), 7, n_tokens=7), {}, set()),
    ("cpt", "doc_lengths_sum", lambda: replace_row(packed(N), 7, doc_lengths=[3, 4]), {}, set()),
    ("cpt", "rows_full", lambda: replace_row(packed(N), 7, input_ids=list(range(7)), doc_lengths=[3, 4], n_tokens=7),
     {}, set()),
    ("cpt", "within_context", lambda: replace_row(packed(N), 7, input_ids=list(range(9)), doc_lengths=[3, 6],
                                                  n_tokens=9), {}, set()),
    ("sft", "not_empty.task_type", lambda: replace_row(sft(N), 7, task_type=""), {}, {"share.task_type."}),
    ("sft", "not_empty.messages", lambda: replace_row(sft(N), 7, messages=[]), {},
     {"roles_alternate", "chars.conversation"}),
    # a blank message passes every column-level check: the model would learn to answer nothing
    ("sft", "not_empty.message_content", lambda: replace_row(sft(N), 7, messages=[conversation(7)[0], {
        "role": "assistant", "content": ""}]), {}, set()),
    ("sft", "not_empty.message_content", lambda: replace_row(sft(N), 7, messages=[
        {"role": "user", "content": "\u200b"}, conversation(7)[1], {"role": "user", "content": "And the valve?"},
        {"role": "assistant", "content": " \r\n\u00a0"}]), {}, set()),
    ("sft", "unique_ids", lambda: replace_row(sft(N), 7, id="s6"), {}, set()),
    ("sft", "duplicate_rate", lambda: replace_row(sft(N), 7, messages=conversation(6)), {}, set()),
    ("sft", "roles_alternate", lambda: replace_row(sft(N), 7, messages=conversation(7)[::-1]), {}, set()),
    ("sft", "roles_alternate", lambda: replace_row(sft(N), 7, messages=conversation(7)[:1]), {}, set()),
    ("sft", "no_pii", lambda: replace_row(sft(N), 7, messages=[conversation(7)[0], {
        "role": "assistant", "content": "Ring +44 20 7946 0958."}]), {}, set()),
    ("sft", "chars.conversation", lambda: replace_row(sft(N), 7, messages=[conversation(7)[0], {
        "role": "assistant", "content": long_text(300)}]), {"sft": {"conversation_chars": {"min": 2, "max": 250}}},
     set()),
    ("sft", "share.task_type.rare", lambda: replace_row(sft(N), 7, task_type="rare"),
     {"sft": {"task_type_share": {"min": 0.05, "max": 1.0}}}, set()),
    ("sft", "share.variant.odd", lambda: replace_row(sft(N), 7, variant="odd"),
     {"sft": {"variant_share": {"min": 0.05, "max": 1.0}}}, set()),
    ("sft", "within_context", lambda: replace_row(sft(N), 7, messages=[conversation(7)[0], {
        "role": "assistant", "content": long_text(2000)}]), {"sft": {"context": {"max_tokens": 300}}}, set()),
    ("preferences", "chosen_differs", lambda: replace_row(preferences(N), 7, rejected=prose(7)), {}, set()),
    ("preferences", "not_empty.prompt", lambda: replace_row(preferences(N), 7, prompt=None), {}, {"chars.prompt"}),
    # invisible characters only (zero-width space, BOM, no-break space): blank to a reader and to a model
    ("preferences", "not_empty.chosen", lambda: replace_row(preferences(N), 7, chosen="\u200b\ufeff\u00a0"), {},
     set()),
    ("preferences", "values_in.review_status", lambda: replace_row(preferences(N), 7, review_status="maybe"), {},
     set()),
    ("preferences", "unique_ids", lambda: replace_row(preferences(N), 7, id="p6"), {}, set()),
    ("preferences", "duplicate_rate", lambda: replace_row(replace_row(preferences(N), 7, prompt=preferences(N)[
        "prompt"][6].as_py(), rejected=preferences(N)["rejected"][6].as_py()), 7, chosen=prose(6)), {}, set()),
    ("preferences", "no_pii", lambda: replace_row(preferences(N), 7, chosen=prose(7) + " See 8.8.8.8."), {}, set()),
    ("preferences", "chars.rejected", lambda: replace_row(preferences(N), 7, rejected=long_text(300)),
     {"preferences": {"text_chars": {"min": 1, "max": 250}}}, set()),
    ("preferences", "within_context", lambda: replace_row(preferences(N), 7, chosen=long_text(2000)),
     {"preferences": {"context": {"max_tokens": 300}}}, set()),
    ("preferences", "schema", lambda: preferences(N).drop_columns(["judge_model"]), {}, set()),
    ("reviews", "values_in.review_status", lambda: replace_row(preferences(N, "approved"), 7, review_status="pending"),
     {}, set()),
    # an edit that left an answer blank, as a browser sends it
    ("reviews", "not_empty.chosen", lambda: replace_row(preferences(N, "approved"), 7, chosen="\u200b\r\n"), {},
     set()),
]


@pytest.mark.parametrize(("kind", "expected", "defect", "sections", "also"), DEFECTS,
                         ids=[f"{d[0]}-{d[1]}-{i}" for i, d in enumerate(DEFECTS)])
def test_one_defect_fails_the_expectation_it_breaks(tmp_path, kind, expected, defect, sections, also):
    config = thresholds(tmp_path, **sections) if sections else None
    result = validate(kind, dataset(tmp_path, kind, defect()), config)
    names = failing(result)
    assert expected in names, result.summary()
    assert all(name == expected or any(name.startswith(a) for a in also) for name in names), result.summary()
    summary = result.summary()
    assert f"FAIL {expected}" in summary
    check = next(v.check for v in result.failed if v.check.name == expected)
    if expected not in ("schema", "duplicate_rate", "unique_ids") and not expected.startswith("share."):
        assert check.examples and any(("7" in e) for e in check.examples), check.examples  # the planted row


def test_domain_token_share_is_held_to_the_mixing_target(tmp_path):
    result = validate("cpt", dataset(tmp_path, "cpt", packed(N), side=cpt_documents(500, 500)))
    assert failing(result) == {"domain_token_share"}
    check = result.failed[0].check
    assert check.observed == 0.5 and check.low == pytest.approx(0.78) and check.high == pytest.approx(0.82)


def test_a_factory_run_is_held_only_to_what_it_redacted(tmp_path):
    text = prose(7) + " Call 415-555-2671 today."
    root = publish(tmp_path / "run", {"documents": replace_row(documents(N), 7, text=text)},
                   {"redact": {"emails": True, "ips": True, "phones": False}})
    assert validate("documents", root).success  # phones were left on purpose
    # its data folder alone: unknown provenance, so every rule applies
    assert failing(validate("documents", root / "documents")) == {"no_pii"}
