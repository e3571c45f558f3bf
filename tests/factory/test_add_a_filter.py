"""docs/ARCHITECTURE.md's recipe "add a filter": a `filters:` entry in the config naming a datatrove
filter and its keyword arguments, and nothing else, runs in the pipeline after the preset's filters."""
from __future__ import annotations

import pytest
from conftest import PARAGRAPHS, parquet_source, write_config, write_parquet

from core.errors import ConfigError
from factory.config import load_factory_config

CONFIDENTIAL = PARAGRAPHS[1] + " The figures in this report are confidential and must not be shared."
NO_CONFIDENTIAL = {"no_confidential": {"datatrove": "RegexFilter", "enabled": True, "regex_exp": "(?i)confidential"}}


def test_a_filter_added_in_config_only_rejects_in_the_quality_stage(tmp_path, run_factory):
    texts = {"d0": PARAGRAPHS[0], "d1": CONFIDENTIAL, "d2": PARAGRAPHS[2]}
    data = write_parquet(tmp_path / "docs.parquet", {"id": list(texts), "text": list(texts.values())})
    config = write_config(tmp_path / "config.yaml", sources=[parquet_source("docs", data)],
                          output_dir=tmp_path / "out", filters=NO_CONFIDENTIAL,
                          dedup={"exact": {"enabled": False}, "fuzzy": {"enabled": False}})  # filters only
    assert list(load_factory_config(config).filters)[-1] == "no_confidential"  # after the preset's filters
    result = run_factory(config)
    assert result.kept_ids == {"d0", "d2"}
    rejected = result.reject("d1")
    assert (rejected["stage"], rejected["reason"]) == ("quality", "no_confidential")
    quality = next(row for row in result.manifest["stages"] if row["stage"] == "quality")
    assert quality["dropped"] == {"no_confidential": 1}


def test_an_added_filter_is_checked_against_datatrove(tmp_path):
    data = tmp_path / "docs.parquet"
    typo = {"no_confidential": {**NO_CONFIDENTIAL["no_confidential"], "regex": "x"}}
    with pytest.raises(ConfigError, match=r"filters\.no_confidential.*unknown parameter\(s\) \['regex'\].*regex_exp"):
        load_factory_config(write_config(tmp_path / "a.yaml", sources=[parquet_source("docs", data)],
                                         output_dir=tmp_path / "out", filters=typo))
    unknown = {"no_confidential": {**NO_CONFIDENTIAL["no_confidential"], "datatrove": "RegexFiltre"}}
    with pytest.raises(ConfigError, match=r"unknown datatrove filter 'RegexFiltre'.*RegexFilter"):
        load_factory_config(write_config(tmp_path / "b.yaml", sources=[parquet_source("docs", data)],
                                         output_dir=tmp_path / "out", filters=unknown))
