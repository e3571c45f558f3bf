"""Config loading: preset merging, strict keys with their path in the error, datatrove parameter
checks, the offline language filter, and the config hash that identifies a run's output."""
from __future__ import annotations

import pytest
import yaml
from conftest import parquet_source, write_config

from core.config import config_hash
from core.errors import ConfigError
from factory.config import PRESETS_DIR, available_presets, load_factory_config
from factory.stages.heuristic_filters import HeuristicFilters


@pytest.fixture
def config_file(tmp_path):
    """Write a config with one Parquet source; keyword sections are merged on top."""

    def make(name="config.yaml", **sections):
        source = parquet_source("papers", tmp_path / "papers.parquet")
        return write_config(tmp_path / name, sources=[source], output_dir=tmp_path / "out", **sections)

    return make


def load_error(path) -> str:
    with pytest.raises(ConfigError) as info:
        load_factory_config(path)
    return str(info.value)


def test_a_minimal_config_loads_with_preset_defaults(config_file, tmp_path):
    config = load_factory_config(config_file())
    assert config.output_dir == str(tmp_path / "out")
    assert config.sources[0].name == "papers"
    # the base preset supplies every section the user did not write
    base = yaml.safe_load((PRESETS_DIR / "base.yaml").read_text())
    assert config.limits.max_chars == base["limits"]["max_chars"]
    assert config.dedup.fuzzy.num_perm == base["dedup"]["fuzzy"]["num_bands"] * base["dedup"]["fuzzy"]["rows_per_band"]


def test_unknown_nested_key_is_an_error_naming_its_path(config_file):
    path = config_file(dedup={"fuzzy": {"thresholdd": 0.9}})
    message = load_error(path)
    assert str(path) in message
    assert "dedup.fuzzy.thresholdd: unknown key" in message


def test_unknown_top_level_key_is_an_error(config_file):
    message = load_error(config_file(output_dri="elsewhere"))
    assert "output_dri: unknown key" in message


def test_unknown_datatrove_filter_parameter_is_an_error_naming_filter_and_parameter(config_file):
    message = load_error(config_file(filters={"c4": {"min_num_sentencez": 3}}))
    assert "filters.c4" in message
    assert "min_num_sentencez" in message
    # the error lists what datatrove does accept, so the typo is easy to fix
    assert "min_num_sentences" in message.replace("min_num_sentencez", "")


def test_datatrove_filter_parameters_reach_the_filter(config_file):
    config = load_factory_config(config_file(filters={
        "c4": {"min_num_sentences": 2},
        "gopher_repetition": {"top_n_grams": [[2, 0.3], [3, 0.25]]},
    }))
    filters = {step.name: step.filter for step in HeuristicFilters(config.filters).steps()}
    assert filters["c4"].min_num_sentences == 2
    # YAML lists of pairs become the tuples datatrove expects
    assert filters["gopher_repetition"].top_n_grams == ((2, 0.3), (3, 0.25))


def test_disabled_filters_are_not_built(config_file):
    config = load_factory_config(config_file(filters={"c4": {"enabled": False}, "fineweb": {"enabled": False}}))
    assert [step.name for step in HeuristicFilters(config.filters).steps()] == ["gopher_repetition", "gopher_quality"]


def test_language_filter_without_model_is_not_available(config_file):
    message = load_error(config_file(filters={"language": {"enabled": True}}))
    assert "filters.language" in message
    assert "not available" in message
    assert "model_path" in message


def test_language_filter_with_missing_model_file_is_not_available(config_file, tmp_path):
    missing = tmp_path / "lid.176.bin"
    message = load_error(config_file(filters={"language": {"enabled": True, "model_path": str(missing)}}))
    assert "not available" in message
    assert str(missing) in message


def test_unknown_preset_is_an_error_listing_the_available_ones(config_file):
    message = load_error(config_file(preset="legal"))
    assert "unknown preset 'legal'" in message
    for preset in ("web", "scientific"):
        assert preset in available_presets()
        assert preset in message


def test_preset_values_apply_and_the_user_file_wins(config_file):
    scientific = yaml.safe_load((PRESETS_DIR / "scientific.yaml").read_text())
    preset_value = scientific["normalise"]["unwrap_hard_wraps"]
    assert load_factory_config(config_file(preset="scientific")).normalise.unwrap_hard_wraps is preset_value
    overridden = config_file("override.yaml", preset="scientific", normalise={"unwrap_hard_wraps": not preset_value})
    assert load_factory_config(overridden).normalise.unwrap_hard_wraps is (not preset_value)


def test_invalid_value_is_an_error_naming_its_path(config_file):
    message = load_error(config_file(dedup={"fuzzy": {"threshold": 1.5}}))
    assert "dedup.fuzzy.threshold" in message


def test_repeated_source_names_are_an_error(tmp_path):
    source = parquet_source("papers", tmp_path / "papers.parquet")
    path = write_config(tmp_path / "config.yaml", sources=[source, dict(source)], output_dir=tmp_path / "out")
    assert "papers" in load_error(path)


def test_missing_config_file_is_an_error(tmp_path):
    assert "not found" in load_error(tmp_path / "nope.yaml")


def test_overrides_replace_config_values(config_file, tmp_path):
    config = load_factory_config(config_file(), {"output_dir": str(tmp_path / "other")})
    assert config.output_dir == str(tmp_path / "other")


def test_config_hash_is_stable_and_tracks_values(config_file, tmp_path):
    first = config_file("a.yaml")
    digest = config_hash(load_factory_config(first))
    assert config_hash(load_factory_config(first)) == digest

    # the same settings written differently (key order, a value equal to the default) hash the same
    raw = yaml.safe_load(first.read_text())
    reordered = tmp_path / "b.yaml"
    reordered.write_text(yaml.safe_dump(dict(reversed(list(raw.items()))), sort_keys=False))
    assert config_hash(load_factory_config(reordered)) == digest
    base = yaml.safe_load((PRESETS_DIR / "base.yaml").read_text())
    same_value = config_file("c.yaml", dedup={"fuzzy": {"threshold": base["dedup"]["fuzzy"]["threshold"]}})
    assert config_hash(load_factory_config(same_value)) == digest

    changed = config_file("d.yaml", dedup={"fuzzy": {"threshold": 0.85}})
    assert config_hash(load_factory_config(changed)) != digest
    assert config_hash(load_factory_config(first, {"output_dir": str(tmp_path / "elsewhere")})) != digest
