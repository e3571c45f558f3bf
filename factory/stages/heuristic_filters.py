"""Heuristic quality filters: datatrove's own, named, switched and parameterised from config.

The filters are the ``filters:`` entries of the config (each a datatrove class and its keyword
arguments), run in config order; a document is rejected by the first it fails, with the reason
``<entry name>:<datatrove's reason>``. The stage keeps the name ``quality`` in rejects and funnel.
"""
from __future__ import annotations

from factory.config import DatatroveFilter
from factory.stages.base import DocumentStepsStage
from factory.stages.document_steps import FilterStep


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
        return [FilterStep(name, build_filter(spec)) for name, spec in filters.items() if spec.enabled]
