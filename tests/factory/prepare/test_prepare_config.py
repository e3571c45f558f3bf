"""Bad prepare input is refused before any work, with a message naming the file and field."""
from __future__ import annotations

import json

import pytest
import yaml
from conftest import published

from factory.__main__ import main
from core.errors import ConfigError, InputError
from factory.prepare.config import load_prepare_config
from factory.prepare.inputs import check_factory_output
from prepare_corpus import topic_corpus, train_test_tokenizer, write_factory_output


def config_file(tmp_path, **values):
    path = tmp_path / "prepare.yaml"
    path.write_text(yaml.safe_dump({"input_dir": str(tmp_path / "in"), "output_dir": str(tmp_path / "out"), **values}))
    return path


def test_sample_config_loads_on_the_preset():
    config = load_prepare_config("configs/sample_prepare.yaml")
    assert config.mixing.domain_token_fraction == 0.8 and config.grouping.embedder == "tfidf"
    assert config.group_tokens == config.grouping.rows_per_group * config.packing.seq_len


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"packing\.seq_lenn: unknown key"):
        load_prepare_config(config_file(tmp_path, packing={"seq_lenn": 10}))


def test_missing_tokenizer_directory_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"tokenizer\.path: .*does not exist"):
        load_prepare_config(config_file(tmp_path, tokenizer={"path": str(tmp_path / "nope")}))


def test_a_tokenizer_in_a_published_output_is_read_from_its_current_run(tmp_path):
    """``tokenizer.path: <prepare output>/tokenizer`` (a recipe's ``@prepare/tokenizer``) names the tokenizer
    the current run saved: ``<output>/tokenizer`` itself is not a folder on disk."""
    from train_fixtures import publish_copy

    from factory.prepare.prepare_run import tokenizer_for

    train_test_tokenizer([text for _, text in topic_corpus(per_topic=2)], tmp_path / "staged" / "tokenizer")
    publish_copy(tmp_path / "staged", tmp_path / "prepared")
    config = load_prepare_config(config_file(tmp_path, tokenizer={"path": str(tmp_path / "prepared" / "tokenizer")}))
    assert tokenizer_for(None, 0, config, tmp_path) == str(published(tmp_path / "prepared") / "tokenizer")


def test_unknown_curriculum_score_column_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"curriculum\.score: .*unknown score column.*perplexity"):
        load_prepare_config(config_file(tmp_path, curriculum={"score": {"perplexity": 1.0}}))


def test_missing_input_dir(tmp_path):
    with pytest.raises(InputError, match=r"input_dir: .*does not exist"):
        check_factory_output(str(tmp_path / "absent"))


def test_unfinished_factory_output_is_refused(tmp_path):
    (tmp_path / "half" / "documents").mkdir(parents=True)
    with pytest.raises(InputError, match="not a finished factory run"):
        check_factory_output(str(tmp_path / "half"))


def test_documents_without_the_contract_columns_are_refused(tmp_path):
    out = write_factory_output(tmp_path / "run", ["a text"], ["another text"], drop=("text", "source", "domain"))
    with pytest.raises(InputError, match=r"part-0\.parquet: missing column\(s\) \['text', 'source', 'domain'\]"):
        check_factory_output(str(out))


def test_the_documents_of_the_current_factory_run_are_read_and_no_older_version(tmp_path):
    from factory.prepare.inputs import document_files

    first = write_factory_output(tmp_path / "factory", ["an old text"], ["old news"])
    old_run = published(first)
    write_factory_output(tmp_path / "factory", ["a new text", "another"], ["news"])  # republished
    assert old_run.is_dir() and published(first) != old_run  # the older version is still on disk
    assert check_factory_output(str(first))["outputs"]["documents"]["rows"] == 3
    assert {f.parent for f in document_files(str(first))} == {published(first) / "documents"}


def test_cli_reports_bad_input_with_exit_code_2(tmp_path, capsys):
    assert main(["prepare", str(config_file(tmp_path))]) == 2
    assert "input_dir:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_trained_tokenizer_is_lossless_and_ends_documents_with_eos(tmp_path):
    from factory.prepare.tokenize import encode, load_tokenizer

    texts = [text for _, text in topic_corpus(per_topic=5)] + ["Ünïcode ∑ 数学 \t tabs"]
    path = str(train_test_tokenizer(texts, tmp_path / "tok"))
    tokenizer = load_tokenizer(path)
    for text, ids in zip(texts, encode(texts, path)):
        assert ids[-1] == tokenizer.eos_token_id and tokenizer.eos_token_id not in ids[:-1]
        assert tokenizer.decode(ids[:-1].tolist()) == text
    assert json.loads((tmp_path / "tok" / "tokenizer_config.json").read_text())["eos_token"] == "<|endoftext|>"
