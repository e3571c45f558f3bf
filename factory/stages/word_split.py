"""One spaCy pass per document, shared by every datatrove filter that splits it.

datatrove's text filters split through ``datatrove.utils.text.split_into_words`` /
``split_into_sentences(text, self.language)``, which pass ``language`` to ``load_word_tokenizer``;
that accepts a ``WordTokenizer`` in place of a language code. datatrove already memoises the word
split (``split_into_parts`` is an ``lru_cache``), so the Gopher filters and FineWeb share one word
split of a text; but C4 counting sentences (``split_paragraph: false``) asks for the *sentence* split
of the same text, and spaCy runs over the whole document a second time for it, although its one pass
(tokenizer + sentencizer) yields the words and the sentence spans together.

``SharedSplit`` wraps the language's tokenizer: for spaCy it takes words and sentence spans from one
pass and remembers them for the last few texts (a small LRU keyed by the text, so memory stays
constant); any other tokenizer is asked once per (method, text). It returns exactly what the wrapped
tokenizer returns (a fresh list each call), so the filters decide as before. ``share_word_split``
installs one per language on the built filters that use ``language`` for nothing but splitting.

Warm vocabulary: datatrove splits every text inside a spaCy ``memory_zone``, which frees every string,
lexeme and tokenizer-cache entry the text added, so each document pays again for words that every
document uses. ``SharedSplit`` splits outside the zone until the vocabulary holds ``warm_strings``
strings (the first documents a worker sees: its own domain's words), then inside it as datatrove does.
It splits with its own spaCy pipeline, so datatrove's shared one (and anything measured against it) is
left as datatrove runs it.
The tokens are the same either way (the cache only memoises the split of a word); memory stays bounded
by ``warm_strings`` (100k strings per worker process).
"""
from __future__ import annotations

from collections import OrderedDict
from contextlib import nullcontext

from datatrove.utils.word_tokenizers import SpaCyTokenizer, WordTokenizer, load_word_tokenizer, strip_strings

# datatrove filters whose ``language`` attribute is only ever passed to split_into_words/_sentences
SPLITTING_FILTERS = frozenset({
    "GopherRepetitionFilter", "GopherQualityFilter", "C4QualityFilter", "FineWebQualityFilter",
    "UnigramLogProbFilter",
})


class SharedSplit(WordTokenizer):
    """The language's word tokenizer, splitting each recent text once for all its callers."""

    def __init__(self, language: str, entries: int = 4, warm_strings: int = 100_000):
        super().__init__(language)
        self.inner = own_tokenizer(language)
        self.entries = entries
        self.warm_strings = warm_strings
        self._recent: OrderedDict[str, dict[str, list]] = OrderedDict()

    def word_tokenize(self, text: str) -> list[str]:
        return list(self._split(text, "word_tokenize"))

    def sent_tokenize(self, text: str) -> list[str]:
        return list(self._split(text, "sent_tokenize"))

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return list(self._split(text, "span_tokenize"))

    def _split(self, text: str, method: str) -> list:
        entry = self._recent.get(text)
        if entry is None:
            entry = self._recent[text] = {}
            if len(self._recent) > self.entries:
                self._recent.popitem(last=False)
        else:
            self._recent.move_to_end(text)
        if method not in entry:
            if isinstance(self.inner, SpaCyTokenizer) and method != "sent_tokenize":
                keep = len(self.inner.tokenizer.vocab.strings) < self.warm_strings
                entry["word_tokenize"], entry["span_tokenize"] = spacy_words_and_spans(self.inner, text, keep)
            else:
                entry[method] = getattr(self.inner, method)(text)
        return entry[method]


def own_tokenizer(language: str) -> WordTokenizer:
    """The language's datatrove tokenizer; for spaCy a separate instance of it (its own pipeline, loaded on
    first use), so the strings it keeps stay out of the instance datatrove shares with every other caller."""
    tokenizer = load_word_tokenizer(language)
    return SpaCyTokenizer(tokenizer.language, tokenizer.config) if isinstance(tokenizer, SpaCyTokenizer) else tokenizer


def spacy_words_and_spans(
    tokenizer: SpaCyTokenizer, text: str, keep_strings: bool = False,
) -> tuple[list[str], list[tuple[int, int]]]:
    """``tokenizer.word_tokenize(text)`` and ``tokenizer.span_tokenize(text)`` from one spaCy pass:
    both run the same pipeline (``_do_tokenize``) and read its tokens, resp. its sentences.
    ``keep_strings``: split outside a memory zone, so the words it adds stay in the vocabulary."""
    with nullcontext() if keep_strings else tokenizer.tokenizer.memory_zone():
        tokenizer.tokenizer.max_length = len(text) + 10
        docs = tokenizer._do_tokenize(text)
        words = strip_strings([token.text for doc in docs for token in doc])
        spans: list[tuple[int, int]] = []
        for doc in docs:
            start = spans[-1][1] if spans else 0
            spans.extend((start + sent.start_char, start + sent.end_char) for sent in doc.sents)
    return words, spans


def share_word_split(datatrove_filters: list) -> list:
    """Give the splitting filters one ``SharedSplit`` per language in place of the language code."""
    shared: dict[str, SharedSplit] = {}
    for datatrove_filter in datatrove_filters:
        language = getattr(datatrove_filter, "language", None)
        if type(datatrove_filter).__name__ in SPLITTING_FILTERS and isinstance(language, str):
            if language not in shared:
                shared[language] = SharedSplit(language)
            datatrove_filter.language = shared[language]
    return datatrove_filters
