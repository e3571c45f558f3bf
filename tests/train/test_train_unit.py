"""Training pieces that need no Ray: per-document attention in packed CPT, SFT label masking,
the generated DeepSpeed JSON, config errors before any work, LoRA merge, chat vectors, cluster.yaml."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml

import train_fixtures as tf  # sets the offline env first

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("tiny")
    model_dir = tf.tiny_model_dir(root / "model")
    return root, model_dir, AutoTokenizer.from_pretrained(model_dir)


def load(config_path: Path, stage: str, **overrides):
    from train.config import load_train_config

    return load_train_config(config_path, stage, overrides)


def test_packed_loss_equals_the_same_documents_unpacked(tiny):
    """Position ids restart per document, so packing changes neither attention nor targets."""
    from train.model import build_model
    from train.document_attention import packed_batch

    root, model_dir, tokenizer = tiny
    data = tf.write_cpt(root / "cpt.parquet", tf.pack([[5, 6, 7]], 8))
    config = load(tf.write_train_config(root / "c.yaml", model_path=model_dir, data_path=data, root=root, name="m"), "cpt")
    model = build_model(config).eval()  # sdpa, as trained
    docs = tf.documents_tokens(tokenizer)[:4]
    rows = tf.pack(docs, window=10_000)
    assert len(rows) == 1 and len(rows[0]["doc_lengths"]) == 4
    batch = packed_batch({"input_ids": [rows[0]["input_ids"]], "doc_lengths": [rows[0]["doc_lengths"]]},
                         pad_id=tokenizer.pad_token_id)
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], labels=batch["labels"]).loss
        per_doc = [model(input_ids=torch.tensor([d]), labels=torch.tensor([d])).loss for d in docs]
    targets = [len(d) - 1 for d in docs]
    unpacked = sum(l * n for l, n in zip(per_doc, targets)) / sum(targets)
    assert torch.allclose(packed, unpacked, atol=1e-4), (packed, unpacked)
    # and the leak the position ids prevent is real: without them, documents see each other
    with torch.no_grad():
        leaky = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
    assert not torch.allclose(leaky, unpacked, atol=1e-4)


@pytest.mark.parametrize("packing", [False, True])
def test_sft_labels_keep_only_the_assistant_tokens(tiny, tmp_path, packing):
    import datasets

    from train.methods.sft import build_trainer as build_sft_trainer

    root, model_dir, tokenizer = tiny
    data = tf.write_sft(tmp_path / "sft.parquet")
    config = load(tf.write_train_config(tmp_path / "c.yaml", model_path=model_dir, data_path=data, root=tmp_path, name="m"),
                  "sft", deepspeed={"enabled": False}, scaling={"num_workers": 1},
                  data={"max_length": 256}, sft={"packing": packing}, optim={"per_device_batch_size": 4})
    trainer = build_sft_trainer(config, datasets.Dataset.from_parquet(str(data)), str(tmp_path / "hf"))
    batch = next(iter(trainer.get_train_dataloader()))
    ids, labels = batch["input_ids"].flatten(), batch["labels"].flatten()
    trained = tokenizer.decode(ids[labels != -100])
    answers = [a for _, a in tf.QA]
    # every answer, with its end-of-turn token, is a target; nothing of the system or user turns is
    assert trained.count("<|im_end|>") == len(tf.QA)
    for answer in answers:
        assert answer + "<|im_end|>" in trained
    for question, _ in tf.QA:
        assert question not in trained
    assert "answer briefly" not in trained and "<|im_start|>" not in trained
    assert len(trained.replace("<|im_end|>", "")) == sum(len(a) for a in answers)


def test_deepspeed_json_is_generated_from_config(tiny, tmp_path):
    from train.deepspeed_config import deepspeed_config

    _, model_dir, _ = tiny
    data = tf.write_cpt(tmp_path / "cpt.parquet", tf.pack([[5, 6, 7]], 8))
    path = tf.write_train_config(tmp_path / "c.yaml", model_path=model_dir, data_path=data, root=tmp_path, name="m")
    ds = deepspeed_config(load(path, "cpt", deepspeed={"zero_stage": 3, "offload_optimizer": "cpu",
                                                        "offload_param": "cpu"},
                               optim={"gradient_accumulation_steps": 4, "max_grad_norm": 0.5},
                               run={"precision": "bf16"}))
    assert ds["zero_optimization"]["stage"] == 3
    assert ds["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    assert ds["zero_optimization"]["offload_param"]["device"] == "cpu"
    assert ds["gradient_accumulation_steps"] == 4 and ds["gradient_clipping"] == 0.5
    assert ds["train_batch_size"] == 2 * 4 * 2 and ds["bf16"]["enabled"] and not ds["fp16"]["enabled"]
    assert deepspeed_config(load(path, "cpt", deepspeed={"enabled": False})) is None


def test_bad_input_is_named_before_any_work(tiny, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.config import deep_merge
    from train.__main__ import main

    _, model_dir, _ = tiny
    good = tf.write_cpt(tmp_path / "cpt.parquet", tf.pack([[5, 6, 7]], 8))
    no_lengths = tmp_path / "bad" / "cpt.parquet"
    no_lengths.parent.mkdir()
    pq.write_table(pa.table({"input_ids": [[1, 2, 3]]}), no_lengths)
    cases = {
        "missing column(s) ['doc_lengths']": ("cpt", {"data": {"train": str(no_lengths)}}),
        "model.path": ("cpt", {"model": {"path": str(tmp_path / "no-such-model")}}),
        "model.finetune: qlora needs": ("cpt", {"model": {"finetune": "qlora"}}),
        "data.train": ("sft", {"data": {"train": str(tmp_path / "missing.parquet")}}),
        "optim.learning_rat: unknown key": ("cpt", {"optim": {"learning_rat": 1.0}}),
        # every CPU of the local Ray to the workers: Ray Data could never read, the run would hang
        "leaving none for Ray Data": ("cpt", {"scaling": {"resources_per_worker": {"CPU": 1}}, "ray": {"num_cpus": 2}}),
    }
    path = tf.write_train_config(tmp_path / "good.yaml", model_path=model_dir, data_path=good, root=tmp_path, name="bad")
    for expected, (stage, change) in cases.items():
        bad = tmp_path / "bad.yaml"
        bad.write_text(yaml.safe_dump(deep_merge(yaml.safe_load(path.read_text()), change)))
        assert main([stage, str(bad)]) == 2
        err = capsys.readouterr().err
        assert expected in err, err
    assert not (tmp_path / "ray").exists()  # nothing started


def test_a_config_naming_published_outputs_is_checked_and_read_in_their_current_runs(tiny, tmp_path):
    """``model.path: <model out>`` and ``data.train: <prepare out>/train`` name outputs whose files lie in
    ``runs/<id>`` behind CURRENT: the checks before Ray pass, the model and the input files are the current
    run's, the lineage names that run, and an adapter trained from a published one names that version."""
    from conftest import published
    from core.adapters import named_base
    from core.publish import published_run_ref
    from train.data import input_files
    from train.launch import name_start_model_as_base
    from train.methods import get_stage
    from train.model import build_model

    _, model_dir, _ = tiny
    tf.write_sft(tmp_path / "staging" / "train" / "part-0.parquet")
    prepare = tf.publish_copy(tmp_path / "staging", tmp_path / "prepare")
    model = tf.publish_copy(model_dir, tmp_path / "model")
    config = load(tf.write_train_config(tmp_path / "c.yaml", model_path=model, data_path=prepare / "train",
                                        root=tmp_path, name="m"), "sft")
    assert input_files(config, get_stage("sft")) == [str(published(prepare) / "train" / "part-0.parquet")]
    assert build_model(config).config.hidden_size == 64
    assert published_run_ref(config.data.train)["run_path"] == str(published(prepare))
    assert published_run_ref(config.model.path)["run_path"] == str(published(model))

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"base_model_name_or_path": "peft recorded this"}')
    name_start_model_as_base(adapter, str(model))
    assert named_base(adapter) == str(published(model))  # the version trained on, which a rebuild does not change


def test_lora_merge_gives_the_adapter_models_logits_and_chat_vector_adds_deltas(tiny, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from train.__main__ import main

    _, model_dir, tokenizer = tiny
    torch.manual_seed(1)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir),
                                LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    tokenizer.save_pretrained(tmp_path / "adapter")
    ids = torch.tensor([tokenizer("the pump moves coolant")["input_ids"]])
    adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), tmp_path / "adapter").eval()
    assert main(["merge", str(tmp_path / "adapter"), str(tmp_path / "merged")]) == 0
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    with torch.no_grad():
        base_logits = AutoModelForCausalLM.from_pretrained(model_dir)(ids).logits
        assert torch.allclose(adapter(ids).logits, merged(ids).logits, atol=1e-5)
        assert not torch.allclose(base_logits, merged(ids).logits, atol=1e-3)  # the adapter did something
    assert (tmp_path / "merged" / "tokenizer.json").is_file()

    # chat vector: target + (chat - base); with target = base it reproduces the chat model
    assert main(["chat-vector", "--base", str(model_dir), "--chat", str(tmp_path / "merged"),
                 "--target", str(tmp_path / "merged"), "--scale", "0.5", str(tmp_path / "cv")]) == 0
    cv = AutoModelForCausalLM.from_pretrained(tmp_path / "cv")
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    for (name, w), (_, b), (_, m) in zip(cv.named_parameters(), base.named_parameters(), merged.named_parameters()):
        assert torch.allclose(w, m + 0.5 * (m - b), atol=1e-6), name


def test_cluster_yaml_passes_rays_own_validation():
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((REPO / "cluster.yaml").read_text())
    config = prepare_config(raw)
    validate_config(config)
    head = config["available_node_types"][config["head_node_type"]]
    gpu_types = [t for name, t in config["available_node_types"].items() if name != config["head_node_type"]]
    assert head["resources"] == {"CPU": 0} and "p" not in head["node_config"]["InstanceType"][:1]
    assert gpu_types and all(t["max_workers"] > t["min_workers"] for t in gpu_types)
    assert config["idle_timeout_minutes"] > 0
    assert any("pip install" in c and "-c constraints.txt -e ." in c for c in config["setup_commands"])
    assert any(dst.endswith("configs") for dst in config["file_mounts"])


@pytest.mark.parametrize("stage", ["cpt", "sft", "dpo"])
def test_example_configs_are_valid_on_top_of_the_presets(stage):
    from core.config import deep_merge, read_yaml, validate_config
    from train.config import BASE_PRESET, config_model
    from train.methods import stage_preset

    data = deep_merge(read_yaml(BASE_PRESET), read_yaml(stage_preset(stage)))
    config = validate_config(config_model(stage), {**deep_merge(data, read_yaml(REPO / "configs" / f"train_{stage}.yaml")),
                                                   "stage": stage}, f"train_{stage}.yaml")
    assert config.optim.learning_rate == {"cpt": 1e-4, "sft": 5e-5, "dpo": 5e-6}[stage]
    assert config.optim.lr_scheduler == "cosine" and config.optim.warmup_ratio > 0


def test_the_controllers_poll_interval_comes_from_the_config_and_the_environment_wins(tiny, tmp_path, monkeypatch):
    """Ray Train's controller reads RAY_TRAIN_HEALTH_CHECK_INTERVAL_S from the driver's environment at each fit:
    each run's own run.health_check_interval_s is set there, and a value the user exported is left alone."""
    from train import launch

    root, model_dir, _ = tiny
    path = tf.write_train_config(tmp_path / "cpt.yaml", model_path=model_dir, data_path=tmp_path, root=tmp_path,
                                 name="poll")
    monkeypatch.delenv(launch.HEALTH_CHECK_INTERVAL.name, raising=False)
    monkeypatch.setattr(launch.HEALTH_CHECK_INTERVAL, "user_set", False)
    launch.apply_controller_settings(load(path, "cpt"))
    assert os.environ[launch.HEALTH_CHECK_INTERVAL.name] == "0.5"  # the preset's, not Ray's 2 s
    launch.apply_controller_settings(load(path, "cpt", run={"health_check_interval_s": 0.2}))
    assert os.environ[launch.HEALTH_CHECK_INTERVAL.name] == "0.2"  # the next run in the same process has its own

    monkeypatch.setenv(launch.HEALTH_CHECK_INTERVAL.name, "3")
    monkeypatch.setattr(launch.HEALTH_CHECK_INTERVAL, "user_set", True)
    launch.apply_controller_settings(load(path, "cpt", run={"health_check_interval_s": 0.2}))
    assert os.environ[launch.HEALTH_CHECK_INTERVAL.name] == "3"
