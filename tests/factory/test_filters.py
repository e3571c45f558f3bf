"""The per-batch cleaning stages on crafted documents: validate, normalise (ftfy, hard wraps),
redact (emails, IPs, phones) and datatrove's quality filters, each reason named after its filter."""
from __future__ import annotations

import random
import re

import pyarrow as pa
import pytest
from conftest import PARAGRAPHS

from core.config import deep_merge
from factory.config import DatatroveFilter, LimitsConfig, NormaliseConfig, RedactConfig, preset_layers
from factory.documents import IN_FLIGHT_SCHEMA
from factory.stages.heuristic_filters import HeuristicFilters
from factory.stages.normalise import Normalise, unwrap_hard_wraps
from core.pii import PHONE_PATTERN, find_pii
from factory.stages.redact import Redact
from factory.stages.validate import Validate


def in_flight(texts: list, rejected: dict[int, str] | None = None) -> pa.Table:
    """An in-flight table of documents d0, d1, ...; ``rejected`` marks rows an earlier stage dropped."""
    n = len(texts)
    rejected = rejected or {}
    return pa.table(
        {
            "id": [f"d{i}" for i in range(n)],
            "text": texts,
            "source": ["crafted"] * n,
            "domain": ["general"] * n,
            "meta": ["{}"] * n,
            "reject_stage": ["read" if i in rejected else None for i in range(n)],
            "reject_reason": [rejected.get(i) for i in range(n)],
            "reject_detail": [None] * n,
        },
        schema=IN_FLIGHT_SCHEMA,
    )


def preset_section(preset: str, section: str) -> dict:
    base, chosen = preset_layers({"preset": preset})[-2:]  # the storage defaults come first
    return deep_merge(base, chosen)[section]


def web_filters(**changes) -> dict[str, DatatroveFilter]:
    raw = preset_section("web", "filters")
    for name, values in changes.items():
        raw[name] = {**raw[name], **values}
    return {name: DatatroveFilter.model_validate(entry) for name, entry in raw.items()}


def quality_batch(table: pa.Table, filters: dict[str, DatatroveFilter]) -> pa.Table:
    return HeuristicFilters(filters)(table)


def validate_batch(table: pa.Table, max_chars: int) -> pa.Table:
    return Validate(LimitsConfig(max_chars=max_chars))(table)


def verdicts(table: pa.Table) -> list[tuple[str | None, str | None]]:
    return list(zip(table["reject_stage"].to_pylist(), table["reject_reason"].to_pylist()))


# --- quality filters ---------------------------------------------------------------------------

GOOD = PARAGRAPHS[0]
rng = random.Random(7)
GIBBERISH = " ".join("".join(rng.choice("qxzkvwjbrtplmn") for _ in range(rng.randint(3, 9))) for _ in range(80)) + "."
TOO_SHORT = (
    "The committee will meet again next week to review the results of the survey. "
    "Members hope to decide what should be done about the old road near the school, "
    "which has been closed since the floods damaged it in March."
)
REPETITIVE = " ".join(["The quick brown fox jumps over the lazy dog and then it runs away."] * 30)
LOREM = GOOD + " Lorem ipsum dolor sit amet was the text that the designer left in the first draft."
CURLY = GOOD + " The template used the {title} field for the heading of every page."
SHORT_LINES = "\n".join([
    "Cats sleep most of the day.", "Dogs like to run in parks.", "Birds sing early at dawn.",
    "Fish swim in cold rivers.", "Bees make honey in hives.", "Cows give us fresh milk.",
    "Owls hunt mice at night.", "Frogs live near the pond.", "Ducks float on the lake.",
    "Goats climb steep hills.", "Horses pull heavy carts.", "Sheep grow thick wool.",
    "Foxes hide in the woods.", "Ants carry tiny leaves.", "Bats fly when it is dark.",
])


def test_normal_english_paragraphs_pass_every_filter():
    out = quality_batch(in_flight(PARAGRAPHS), web_filters())
    assert verdicts(out) == [(None, None)] * len(PARAGRAPHS)
    # a single-line paragraph comes through the filters unchanged
    assert out["text"].to_pylist() == PARAGRAPHS


@pytest.mark.parametrize(
    ("text", "filter_name", "rule"),
    [
        (GIBBERISH, "gopher_quality", None),
        (TOO_SHORT, "gopher_quality", "gopher_short_doc"),
        (REPETITIVE, "gopher_repetition", None),
        (LOREM, "c4", "lorem_ipsum"),
        (CURLY, "c4", "curly_bracket"),
        (SHORT_LINES, "fineweb", None),
    ],
    ids=["gibberish", "too_short", "repetitive", "lorem_ipsum", "curly_bracket", "short_lines"],
)
def test_junk_is_rejected_by_the_expected_filter(text, filter_name, rule):
    out = quality_batch(in_flight([GOOD, text]), web_filters())
    (good_stage, good_reason), (stage, reason) = verdicts(out)
    assert (good_stage, good_reason) == (None, None)
    assert stage == "quality"
    assert reason.startswith(f"{filter_name}:"), reason
    if rule:
        assert reason == f"{filter_name}:{rule}"


def test_a_disabled_filter_no_longer_rejects():
    assert verdicts(quality_batch(in_flight([LOREM]), web_filters(c4={"enabled": False})))[0] == (None, None)


def test_filter_parameters_from_config_change_the_verdict():
    # TOO_SHORT has 40 words: under gopher's default minimum of 50, over a minimum of 30
    assert verdicts(quality_batch(in_flight([TOO_SHORT]), web_filters()))[0][1] == "gopher_quality:gopher_short_doc"
    relaxed = web_filters(gopher_quality={"min_doc_words": 30}, c4={"min_num_sentences": 2})
    assert verdicts(quality_batch(in_flight([TOO_SHORT]), relaxed))[0] == (None, None)


def test_rows_rejected_earlier_keep_their_first_reason():
    out = quality_batch(in_flight([GIBBERISH, GOOD], rejected={0: "invalid_json"}), web_filters())
    assert verdicts(out) == [("read", "invalid_json"), (None, None)]


def test_first_failing_filter_names_the_rejection():
    # repetitive AND lorem ipsum: gopher_repetition runs before c4
    out = quality_batch(in_flight([" ".join(["Lorem ipsum dolor sit amet, consectetur adipiscing elit."] * 30)]),
                        web_filters())
    assert verdicts(out)[0][1].startswith("gopher_repetition:")


# --- validate ----------------------------------------------------------------------------------


def test_validate_rejects_null_empty_whitespace_and_too_long_text():
    texts = [None, "", "  \n\t ", "x" * 101, "x" * 100, "A short sentence."]
    out = validate_batch(in_flight(texts), max_chars=100)
    assert out["reject_stage"].to_pylist() == ["validate"] * 4 + [None, None]
    assert out["reject_reason"].to_pylist() == ["null_text", "empty_text", "empty_text", "too_long", None, None]
    assert "101" in out["reject_detail"][3].as_py()
    # validation only marks rows: text is untouched
    assert out["text"].to_pylist() == texts


def test_validate_counts_characters_not_bytes():
    assert validate_batch(in_flight(["é" * 100]), max_chars=100)["reject_reason"].to_pylist() == [None]


def test_validate_leaves_earlier_rejections_alone():
    out = validate_batch(in_flight([None, "ok text"], rejected={0: "non_utf8"}), max_chars=100)
    assert verdicts(out) == [("read", "non_utf8"), (None, None)]


# --- normalise ---------------------------------------------------------------------------------


def normalise(texts: list[str], **changes) -> pa.Table:
    config = NormaliseConfig.model_validate({**preset_section("web", "normalise"), **changes})
    return Normalise(config)(in_flight(texts))


def test_ftfy_fixes_mojibake():
    out = normalise(["The caf\u00c3\u00a9 opened in 2020.", "Caf\u00e9 na\u00efve r\u00e9sum\u00e9."])
    assert out["text"].to_pylist() == ["The café opened in 2020.", "Café naïve résumé."]


def test_ftfy_can_be_switched_off():
    assert normalise(["caf\u00c3\u00a9"], ftfy=False)["text"].to_pylist() == ["caf\u00c3\u00a9"]


def test_unwrap_hard_wraps_joins_lines_but_keeps_paragraphs():
    text = "We study the problem\nof hard wraps in\n  abstracts.\n\nA second paragraph\nstarts here.\n"
    expected = "We study the problem of hard wraps in abstracts.\n\nA second paragraph starts here.\n"
    assert unwrap_hard_wraps(text) == expected
    assert normalise([text], unwrap_hard_wraps=True)["text"].to_pylist() == [expected]
    assert normalise([text], unwrap_hard_wraps=False)["text"].to_pylist() == [text]


def test_unwrap_keeps_paragraph_breaks_with_trailing_spaces():
    assert unwrap_hard_wraps("one\ntwo  \n  \nthree\nfour") == "one two  \n  \nthree four"


# --- redact ------------------------------------------------------------------------------------

REDACT = RedactConfig.model_validate(preset_section("web", "redact"))
EMAIL, IP, PHONE = REDACT.email_placeholder, REDACT.ip_placeholder, REDACT.phone_placeholder


def redact(texts: list[str], config: RedactConfig = REDACT) -> list[str]:
    return Redact(config)(in_flight(texts))["text"].to_pylist()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Write to jane.doe@example.com for details.", f"Write to {EMAIL} for details."),
        ("The server at 8.8.8.8 answered.", f"The server at {IP} answered."),
        ("Call +44 20 7946 0958 today.", f"Call {PHONE} today."),
        ("Call +1 (415) 555-2671 today.", f"Call {PHONE} today."),
        ("Call (415) 555-2671 today.", f"Call {PHONE} today."),
        ("Call 415-555-2671 today.", f"Call {PHONE} today."),
        ("Call 415.555.2671 today.", f"Call {PHONE} today."),
        ("Office: +1 (415) 555-2671, mobile 415-555-2671.", f"Office: {PHONE}, mobile {PHONE}."),
        ("Write to x@uni-x.edu or Jane.Doe@cs.Uni-X.EDU.", f"Write to {EMAIL} or {EMAIL}."),
        ("mAP@0.5 is 41.2; ask first.last+ml@lab.example.co.uk", f"mAP@0.5 is 41.2; ask {EMAIL}"),
        ("An IDN: info@xn--80ak6aa92e.xn--p1ai, a literal: root@[192.0.2.1].", f"An IDN: {EMAIL}, a literal: {EMAIL}."),
    ],
)
def test_pii_is_replaced_by_placeholders(text, expected):
    assert redact([text]) == [expected]
    assert find_pii(text) is not None  # the gate, which shares the rules, would have failed the original


@pytest.mark.parametrize(
    "text",
    [
        "See arXiv:2503.21813 and 2503.21813v2 for the details.",
        "The survey ran from 2019-2021 and again in 2022 - 2023.",
        "The DOI is 10.1145/3368089.3409741 and the other is doi:10.1000/182.",
        "We counted 1234567 rows, 3.14159 and 42 and 100,000 items.",
        "The private router at 192.168.1.1 did not answer.",
        # metric notations of CS papers: datatrove's email pattern matches the first three
        "We report mAP@0.5 of 61.3, R1@0.7 of 45.2 and mAP@0.5:0.95 of 38.9 on COCO.",
        "Recall@10 rises to 0.82, P@5 to 0.61, acc@1 to 77.4% and F1@K stays flat.",
        "Scores at IoU thresholds: AP@0.75=40.1, AR@100 and Hits@1.",
        # no domain with a top-level label: a local mailbox, not an address anyone outside can write to
        "Logs go to user@localhost and root@host on the test machine.",
    ],
)
def test_identifiers_years_dois_and_numbers_are_not_redacted(text):
    assert redact([text]) == [text]
    assert find_pii(text) is None  # nor does the quality gate, which shares the rules, call it PII


def test_placeholders_are_not_themselves_pii():
    text = "Mail jane.doe@example.com or call +44 20 7946 0958 from 8.8.8.8."
    once = redact([text])[0]
    assert once == f"Mail {EMAIL} or call {PHONE} from {IP}."
    assert redact([once]) == [once]
    for placeholder in (EMAIL, IP, PHONE):
        assert not re.search(PHONE_PATTERN, placeholder)
        assert "@" not in placeholder


def test_each_kind_of_redaction_can_be_switched_off():
    text = "Mail jane.doe@example.com or call 415-555-2671 from 8.8.8.8."
    no_phones = REDACT.model_copy(update={"phones": False})
    assert redact([text], no_phones) == [f"Mail {EMAIL} or call 415-555-2671 from {IP}."]
    no_emails = REDACT.model_copy(update={"emails": False, "ips": False})
    assert redact([text], no_emails) == [f"Mail jane.doe@example.com or call {PHONE} from 8.8.8.8."]


def test_custom_placeholders_are_used():
    custom = REDACT.model_copy(update={"email_placeholder": "[email removed]", "phone_placeholder": "[phone removed]"})
    assert redact(["a.b@example.org, 415-555-2671"], custom) == ["[email removed], [phone removed]"]
