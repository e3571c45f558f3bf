"""``python -m train init``: a randomly initialised model from a config and a trained tokenizer, published
as a model directory the training stages and eval load (naming the output, read in its current run)."""
from __future__ import annotations

import json

import pytest
import yaml

from conftest import published
from core.errors import ConfigError
from factory.prepare.tokenize import train_tokenizer
from train.__main__ import main


def test_init_builds_a_loadable_model_with_the_tokenizers_vocabulary_and_a_chat_template(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer_dir = train_tokenizer(["the reactor core is cooled by water pumps."] * 20, 300, "<|endoftext|>",
                                    tmp_path / "tokenizer")
    config = tmp_path / "init.yaml"
    config.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "model"), "tokenizer": str(tokenizer_dir),
                                      "architecture": {"hidden_size": 32, "intermediate_size": 64}}))
    assert main(["init", str(config)]) == 0
    run = published(tmp_path / "model")
    model = AutoModelForCausalLM.from_pretrained(run)
    tokenizer = AutoTokenizer.from_pretrained(run)
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 2  # preset + override
    assert model.config.vocab_size == len(tokenizer)
    assert tokenizer.pad_token == tokenizer.eos_token == "<|endoftext|>"
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}],
                                             tokenize=False, return_assistant_tokens_mask=False)
    assert "<|im_start|>assistant\nok<|im_end|>" in rendered
    assert "{% generation %}" in tokenizer.chat_template  # SFT can mask all but the answer
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["summary"]["parameters"] == sum(p.numel() for p in model.parameters())
    assert main(["init", str(config)]) == 0  # the same config again: already published, nothing to do
    assert published(tmp_path / "model") == run


def test_a_stage_config_naming_a_published_model_reads_its_current_run(tmp_path):
    """A training config names the init output (``<out>``), whose files lie in ``<out>/runs/<id>``: the
    checks before Ray, the tokenizer and the memory plan all read the current run."""
    import train_fixtures as tf
    from train.config import load_train_config
    from train.model import build_tokenizer
    from train.plan import model_shape

    tokenizer_dir = train_tokenizer(["the reactor core is cooled by water pumps."] * 20, 300, "<|endoftext|>",
                                    tmp_path / "tokenizer")
    init = tmp_path / "init.yaml"
    init.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "model"), "tokenizer": str(tokenizer_dir),
                                    "architecture": {"hidden_size": 32, "intermediate_size": 64}}))
    assert main(["init", str(init)]) == 0
    data = tf.write_sft(tmp_path / "sft.parquet")
    path = tf.write_train_config(tmp_path / "sft.yaml", model_path=tmp_path / "model", data_path=data, root=tmp_path,
                                 name="sft", model={"tokenizer": str(tmp_path / "model")})
    config = load_train_config(path, "sft")  # model.path and model.tokenizer pass check_paths
    assert config.model.path == str(tmp_path / "model")  # the config keeps naming the output
    assert build_tokenizer(config.model).chat_template
    assert model_shape(config).hidden == 32


def test_init_names_a_bad_tokenizer_and_config_class(tmp_path):
    from train.init_model import load_init_config

    config = tmp_path / "init.yaml"
    config.write_text(yaml.safe_dump({"tokenizer": str(tmp_path)}))
    with pytest.raises(ConfigError, match="tokenizer.*not a tokenizer directory"):
        load_init_config(config)
    (tmp_path / "tokenizer_config.json").write_text("{}")
    config.write_text(yaml.safe_dump({"tokenizer": str(tmp_path), "architecture": {"config_class": "NoSuchConfig"}}))
    with pytest.raises(ConfigError, match="NoSuchConfig.*not a transformers config class"):
        load_init_config(config)
