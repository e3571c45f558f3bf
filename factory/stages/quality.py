"""Heuristic quality filters, all datatrove's own, switched and parameterised from config."""
from __future__ import annotations

from functools import lru_cache

import pyarrow as pa

from factory.config import FiltersConfig
from factory.stages.document_steps import FilterStep, run_steps

STAGE = "quality"
ORDER = ("gopher_repetition", "gopher_quality", "c4", "fineweb")


def build_language_filter(config):
    """datatrove's LanguageFilter with a local fastText model instead of a download."""
    from datatrove.pipeline.filters import LanguageFilter
    from fasttext.FastText import _FastText

    language_filter = LanguageFilter(languages=config.languages, language_threshold=config.threshold)
    language_filter.model._model = _FastText(config.model_path)
    return language_filter


def build_filters(config: FiltersConfig) -> list[FilterStep]:
    steps = []
    for name in ORDER:
        section = getattr(config, name)
        if section.enabled:
            steps.append(FilterStep(name, section.filter_class()(**section.params)))
    if config.language.enabled:
        steps.append(FilterStep("language", build_language_filter(config.language)))
    return steps


@lru_cache(maxsize=4)
def cached_filters(config_json: str) -> list[FilterStep]:
    return build_filters(FiltersConfig.model_validate_json(config_json))


def quality_batch(table: pa.Table, config_json: str) -> pa.Table:
    return run_steps(table, STAGE, cached_filters(config_json))
