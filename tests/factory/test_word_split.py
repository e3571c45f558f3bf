"""The quality filters share one spaCy pass per document (factory.stages.word_split) and still decide
exactly as datatrove's own filters: same reason, same rewritten text, rule by rule."""
from __future__ import annotations

import pytest
from conftest import PARAGRAPHS
from datatrove.data import Document
from datatrove.utils.text import split_into_parts
from datatrove.utils.typeshelper import Languages
from datatrove.utils.word_tokenizers import SpaCyTokenizer, load_word_tokenizer

from core.config import deep_merge
from factory.config import DatatroveFilter, preset_layers
from factory.stages.heuristic_filters import filter_steps
from factory.stages.word_split import SharedSplit

P0, P1, P2 = PARAGRAPHS[:3]
NOUNS = "house river cloud garden window market forest bridge castle valley engine letter planet mirror pocket".split()
NOTES = [f"Note {i} ends here." for i in range(10)]
REPEATED = "Repeated ending line of the text."

# each trips at least one rule of one filter, run alone (see RULES)
CRAFTED = [
    "\n\n".join([P0, P0, P1]),
    "\n\n".join([P0, P0, *NOTES]),
    "\n".join(["Same line here.", "Same line here.", "Other line."]),
    "\n".join([P0, P0, *NOTES]),
    " ".join(f"of the {n}{i}" for i in range(6) for n in NOUNS) + ".",
    " ".join(f"one of the {n}{i} and {n[::-1]}{i}" for i in range(6) for n in NOUNS) + ".",
    " ".join([P0, P1, P0[:300], P2]),
    "A very long single sentence without any end mark at all but many words to pass",
    "The cat sat on the mat and the dog ran to the park.",
    " ".join(["a an it is to of the by"] * 20) + ".",
    " ".join(["internationalization characterisation telecommunications"] * 20 + ["the", "and", "of", "to"]) + ".",
    P0 + " " + " ".join(["#tag"] * 30),
    P0 + " " + " ".join(["wait..."] * 30),
    "\n".join(f"- item {n} of the list and more words here" for n in NOUNS * 2),
    "\n".join(f"The {n} of the story goes on and on..." for n in NOUNS),
    P0 + " " + " ".join(str(i) for i in range(400)),
    " ".join(f"{n}s {n}y {n}ed" for n in NOUNS * 3) + ".",
    P0 + " Lorem ipsum dolor sit amet is the text that was left in the draft.",
    P0 + " The template used the {title} field for the heading of every page.",
    "\n".join(f"Line about the {n} without a stop" for n in NOUNS),
    "\n".join(f"The {n} sleeps." for n in NOUNS),
    "\n".join([P0, P1, REPEATED, REPEATED, P2]),
    "\n".join(f"The {n} sleeps well at night in the old house by the river." for n in NOUNS) + "\n" * 100 + P0,
    # C4 rewrites these (a citation, a sentence without an end mark, spacing): FineWeb splits the new text
    P0 + " As shown before [12], the plan works.  " + P1,
    P1 + " and then nothing more\n\n" + P2,
    *PARAGRAPHS,
]
RULES = {
    "gopher_repetition": {"dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac",
                          "top_2_gram", "top_3_gram", "top_4_gram", "duplicated_5_n_grams"},
    "gopher_quality": {"gopher_short_doc", "gopher_long_doc", "gopher_below_avg_threshold",
                       "gopher_above_avg_threshold", "gopher_too_many_hashes", "gopher_too_many_ellipsis",
                       "gopher_too_many_bullets", "gopher_too_many_end_ellipsis", "gopher_below_alpha_threshold",
                       "gopher_enough_stop_words"},
    "c4": {"lorem_ipsum", "curly_bracket", "too_few_sentences"},
    "fineweb": {"line_punct_ratio", "short_line_ratio", "char_dup_ratio", "list_ratio"},
}


def preset_filters(preset: str) -> dict[str, DatatroveFilter]:
    raw = deep_merge(*preset_layers({"preset": preset})[-2:])["filters"]  # base.yaml and the preset
    return {name: DatatroveFilter.model_validate(entry) for name, entry in raw.items()}


def outcomes(steps, texts) -> list[tuple[str | None, str]]:
    """(first rejection's reason or None, text after the steps) per text, as apply_document_steps decides."""
    split_into_parts.cache_clear()  # datatrove's own memo of recent splits: start each run cold
    results = []
    for text in texts:
        doc = Document(text=text, id="d")
        rejection = next((r for step in steps if (r := step(doc)) is not None), None)
        results.append((rejection and rejection.reason, doc.text))
    return results


@pytest.fixture
def spacy_passes(monkeypatch):
    """Counts runs of the spaCy pipeline behind every word and sentence split (of every tokenizer instance)."""
    original, count = SpaCyTokenizer._do_tokenize, [0]

    def counted(self, text):
        count[0] += 1
        return original(self, text)

    monkeypatch.setattr(SpaCyTokenizer, "_do_tokenize", counted)
    return count


@pytest.mark.parametrize("preset", ["web", "scientific"])
def test_shared_split_decides_as_datatrove_each_filter_alone_and_chained(preset):
    filters = preset_filters(preset)
    # gopher_long_doc needs a lower bound than 100,000 words to fire on a crafted text
    filters["gopher_long"] = filters["gopher_quality"].model_copy(update={"max_doc_words": 100})
    seen = set()
    for name, spec in [*filters.items(), ("chained", None)]:
        if spec is not None and not spec.enabled:
            continue
        chosen = filters if spec is None else {name: spec}
        plain = outcomes(filter_steps(chosen, share_split=False), CRAFTED)
        assert outcomes(filter_steps(chosen), CRAFTED) == plain, name
        seen |= {reason for reason, _ in plain if reason}
    if preset == "web":  # datatrove's defaults: every rule fires on some crafted text
        expected = {f"{name}:{rule}" for name, rules in RULES.items() for rule in rules}
        assert expected - {"gopher_quality:gopher_long_doc"} | {"gopher_long:gopher_long_doc"} <= seen


@pytest.mark.parametrize(("preset", "datatrove_passes"), [("web", 2), ("scientific", 2)])
def test_one_spacy_pass_per_document_not_one_per_split(spacy_passes, preset, datatrove_passes):
    # datatrove memoises the word split (Gopher x2 and FineWeb share it), but C4's sentence split of the
    # same text is a second spaCy pass; shared, words and sentences come from one
    filters = preset_filters(preset)
    outcomes(filter_steps(filters, share_split=False), PARAGRAPHS)
    assert spacy_passes[0] == datatrove_passes * len(PARAGRAPHS)
    spacy_passes[0] = 0
    assert outcomes(filter_steps(filters), PARAGRAPHS) == [(None, text) for text in PARAGRAPHS]
    assert spacy_passes[0] == len(PARAGRAPHS)


def test_shared_split_returns_the_tokenizers_answers_as_fresh_lists(spacy_passes):
    shared, plain = SharedSplit(Languages.english, entries=2), load_word_tokenizer(Languages.english)
    texts = [P0, P1 + "\n\n" + P2, "Short one. Two!", P0]
    for text in texts:
        words = shared.word_tokenize(text)
        assert words == plain.word_tokenize(text)
        assert shared.span_tokenize(text) == plain.span_tokenize(text)
        assert shared.sent_tokenize(text) == plain.sent_tokenize(text)
        words.clear()  # a caller changing its list changes nothing for the next caller
        assert shared.word_tokenize(text) == plain.word_tokenize(text)
    # per text: shared, one pass for words + spans and one for sentences (asked apart); plain, one per
    # call (4). The cache holds 2 texts, so P0 is split again at the end
    assert spacy_passes[0] == len(texts) * (2 + 4)


def test_a_warm_vocabulary_splits_the_same_and_stops_growing_at_its_bound():
    # the first texts are split outside spaCy's memory zone (their words stay, later texts split faster),
    # until the vocabulary holds warm_strings strings; then inside it, so memory stops growing
    plain = load_word_tokenizer(Languages.english)
    shared = SharedSplit(Languages.english, entries=1, warm_strings=200)
    strings = shared.inner.tokenizer.vocab.strings  # its own spaCy pipeline: datatrove's shared one stays cold
    assert shared.inner.tokenizer is not plain.tokenizer
    bound = len(strings) + 200
    shared.warm_strings = bound
    texts = [" ".join(f"w{i}x{j}y," for j in range(40)) + " Done. Again!" for i in range(20)]
    sizes = []
    for text in texts:
        assert shared.word_tokenize(text) == plain.word_tokenize(text)
        assert shared.span_tokenize(text) == plain.span_tokenize(text)
        sizes.append(len(strings))
    assert sizes[0] > bound - 200  # the first text's words were kept
    assert bound <= sizes[-1] < bound + 100  # kept until the bound (one text's words past it), then freed
    assert sizes[-1] == sizes[-5]
