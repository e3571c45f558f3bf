"""Heuristic quality filters: datatrove's own, named, switched and parameterised from config.

The filters are the ``filters:`` entries of the config (each a datatrove class and its keyword
arguments), run in config order; a document is rejected by the first it fails, with the reason
``<entry name>:<datatrove's reason>``. The stage keeps the name ``quality`` in rejects and funnel.
The filters share one spaCy pass per document (``factory.stages.word_split``); verdicts are datatrove's.
"""
from __future__ import annotations

from factory.config import DatatroveFilter
from factory.stages.base import DocumentStepsStage
from factory.stages.document_steps import FilterStep
from factory.stages.word_split import share_word_split


def build_filter(spec: DatatroveFilter):
    """The datatrove filter an entry names; one that would download a model gets the local file instead."""
    if spec.datatrove == "LanguageFilter":
        return language_filter(spec)
    return spec.filter_class()(**spec.params)


def language_filter(spec: DatatroveFilter):
    """datatrove's LanguageFilter with a local fastText model instead of a download."""
    from fasttext.FastText import _FastText

    language = spec.filter_class()(**spec.params)
    language.model._model = _FastText(spec.model_path)
    return language


class HeuristicFilters(DocumentStepsStage):
    name = "quality"
    config_section = "filters"

    @staticmethod
    def build_steps(filters: dict[str, DatatroveFilter]) -> list[FilterStep]:
        return filter_steps(filters)


def filter_steps(filters: dict[str, DatatroveFilter], share_split: bool = True) -> list[FilterStep]:
    """The enabled entries' filters in config order; ``share_split=False`` leaves datatrove's filters as
    they are (each split goes straight to datatrove's tokenizer: for the benchmark and the tests)."""
    enabled = {name: build_filter(spec) for name, spec in filters.items() if spec.enabled}
    if share_split:
        share_word_split(list(enabled.values()))
    return [FilterStep(name, datatrove_filter) for name, datatrove_filter in enabled.items()]
