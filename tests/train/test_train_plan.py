"""python -m train plan: per-GPU memory from DeepSpeed's estimators, checked against a well-known
trainer's published table for 7B models (LLaMA-Factory's README, "Hardware Requirement": full
fine-tune about 120-160 GB, LoRA 16 GB, QLoRA 4-bit 6 GB); GPU runs refuse a plan that cannot fit."""
from __future__ import annotations

import pytest
import yaml

from core import progress
from train.__main__ import main
from train.config import load_train_config
from train.plan import check_plan_fits, plan_memory

TABLE_GB = {"full": 140, "lora": 16, "qlora": 6}  # full: the middle of 120-160


@pytest.fixture(scope="module")
def llama_7b(tmp_path_factory):
    """Llama-2-7B's config.json only: the plan never reads weights (there are none here)."""
    from transformers import LlamaConfig

    path = tmp_path_factory.mktemp("llama-7b")
    LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096).save_pretrained(path)
    assert not list(path.glob("*.safetensors"))
    return path


def config_file(tmp_path, model, finetune: str, **plan) -> str:
    """The table's settings: one GPU, micro-batch 1, 512 tokens, gradient checkpointing, bf16, ZeRO-2."""
    path = tmp_path / f"{finetune}.yaml"
    path.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "model"), "run": {"name": "plan"},
        "model": {"path": str(model), "finetune": finetune, "gradient_checkpointing": True},
        "data": {"train": str(tmp_path / "not-needed-to-plan"), "max_length": 512},
        "optim": {"per_device_batch_size": 1}, "scaling": {"num_workers": 1, "use_gpu": True},
        "plan": plan,
    }))
    return str(path)


@pytest.mark.parametrize("finetune", ["full", "lora", "qlora"])
def test_7b_estimates_are_within_25_percent_of_the_published_table(tmp_path, llama_7b, finetune):
    config = load_train_config(config_file(tmp_path, llama_7b, finetune), "sft", check_inputs=False)
    plan = plan_memory(config)
    assert abs(plan.total_gb - TABLE_GB[finetune]) <= 0.25 * TABLE_GB[finetune], plan
    if finetune == "full":
        assert 120 <= plan.total_gb <= 160
        assert plan.states_gb > 0.9 * plan.total_gb  # DeepSpeed's 20 bytes per parameter dominate


def test_the_knobs_move_the_estimate_the_right_way(tmp_path, llama_7b):
    def total(**sections) -> float:
        path = config_file(tmp_path, llama_7b, "full")
        data = yaml.safe_load(open(path))
        for key, value in sections.items():
            data.setdefault(key, {}).update(value)
        open(path, "w").write(yaml.safe_dump(data))
        return plan_memory(load_train_config(path, "sft", check_inputs=False)).total_gb

    base = total()
    assert total(deepspeed={"offload_optimizer": "cpu"}) < 0.2 * base
    assert total(scaling={"num_workers": 8}, deepspeed={"zero_stage": 3}) < 0.2 * base
    assert total(scaling={"num_workers": 8}, deepspeed={"zero_stage": 2}) < total(scaling={"num_workers": 8},
                                                                                  deepspeed={"zero_stage": 1})
    assert total(model={"gradient_checkpointing": False}, optim={"per_device_batch_size": 8}) > base + 10


def test_plan_command_and_the_refusal_before_ray_starts(tmp_path, llama_7b, capsys):
    fits = config_file(tmp_path, llama_7b, "lora", gpu_memory_gb=24)
    assert main(["plan", fits, "--stage", "sft"]) == 0
    assert "fits in 24 GB per GPU" in capsys.readouterr().out

    too_big = config_file(tmp_path, llama_7b, "full", gpu_memory_gb=80)
    assert main(["plan", too_big, "--stage", "sft"]) == 1
    out = capsys.readouterr().out
    assert "does NOT fit in 80 GB" in out and "deepspeed.offload_optimizer: cpu" in out
    assert main(["plan", too_big, "--stage", "sft", "--gpu-memory-gb", "200"]) == 0

    # the training command runs the same check first, before Ray starts or any data is read
    (tmp_path / "not-needed-to-plan").mkdir()
    assert main(["sft", too_big]) == 2
    err = capsys.readouterr().err
    assert "does NOT fit in 80 GB per GPU" in err and "--force runs it anyway" in err
    messages = []
    with progress.lines_to(messages.append):
        check_plan_fits(load_train_config(too_big, "sft"), force=True)
    assert "--force: running anyway" in messages[0]
