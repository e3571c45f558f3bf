"""CPT, SFT and DPO on 2 Ray Train workers with DeepSpeed ZeRO-2 over gloo, on CPU, tiny model.

One child process (its own local Ray, so the session's 2-CPU Ray stays free) runs the chain a
user runs, through the CLI entry point: CPT with a worker SIGKILLed mid-run, a rerun of the same
CPT run with more steps, SFT with LoRA, and DPO starting from the SFT adapter with LoRA as its
reference. The tests then read what was published and what Ray kept in storage.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import train_fixtures as tf
from conftest import REPO, subprocess_env

pytestmark = pytest.mark.slow

DRIVER = """
import sys
from train.__main__ import main
for argv in {runs!r}:
    code = main(argv)
    print("EXIT", argv[0], code, flush=True)
    if code:
        sys.exit(code)
"""


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("train")
    model = tf.tiny_model_dir(root / "base")
    tokenizer = AutoTokenizer.from_pretrained(model)
    cpt_data = tf.write_cpt(root / "data" / "cpt" / "part-0.parquet", tf.pack(tf.documents_tokens(tokenizer), 40), 8)
    sft_data = tf.write_sft(root / "data" / "sft.parquet", copies=8)
    pref_data = tf.write_preferences(root / "data" / "pref.parquet", copies=8)
    configs = {
        "cpt": tf.write_train_config(
            root / "cpt.yaml", model_path=model, data_path=cpt_data.parent, root=root, name="cpt",
            run={"save_steps": 2, "kill_worker_at_step": 3}),
        "sft": tf.write_train_config(
            root / "sft.yaml", model_path=model, data_path=sft_data, root=root, name="sft",
            model={"finetune": "lora", "gradient_checkpointing": True, "lora": {"r": 8, "alpha": 16, "dropout": 0.0}},
            optim={"learning_rate": 5e-3, "max_steps": 8, "per_device_batch_size": 2}),
        "dpo": tf.write_train_config(
            root / "dpo.yaml", model_path=root / "sft-model", data_path=pref_data, root=root, name="dpo",
            model={"finetune": "lora", "lora": {"r": 8, "alpha": 16, "dropout": 0.0}},
            dpo={"reference": "lora", "review_status": ["approved"]}, optim={"learning_rate": 5e-3, "max_steps": 8}),
    }
    runs = [["cpt", str(configs["cpt"])],
            # the same run name and storage, more steps: a rerun resumes from the latest checkpoint
            ["cpt", str(configs["cpt"]), "--max-steps", "10", "--output-dir", str(root / "cpt-model-10")],
            # the first run again, unchanged: its model is published, nothing is retrained
            ["cpt", str(configs["cpt"])],
            ["sft", str(configs["sft"])],
            ["dpo", str(configs["dpo"])]]
    proc = subprocess.run([sys.executable, "-c", DRIVER.format(runs=runs)], cwd=REPO, capture_output=True,
                          text=True, timeout=840, env=subprocess_env(PYTHONPATH=f"{REPO}:{REPO / 'tests'}"))
    (root / "driver.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    return root, proc.stdout + proc.stderr


def manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def losses(model_dir: Path) -> list[tuple[int, float]]:
    history = json.loads((model_dir / "trainer_state.json").read_text())["log_history"]
    return [(e["step"], e["loss"]) for e in history if "loss" in e]


def assert_learns(model_dir: Path, steps: int) -> None:
    logged = losses(model_dir)
    assert [s for s, _ in logged] == list(range(1, steps + 1))
    values = [v for _, v in logged]
    assert sum(values[-3:]) / 3 < values[0] - 0.05, values


def test_cpt_learns_survives_a_killed_worker_and_resumes_on_rerun(chain):
    root, log = chain
    out = root / "cpt-model"
    assert_learns(out, 8)  # steps 1-8 each logged once: after the kill it continued, it did not restart
    assert (root / "ray" / "cpt" / "fault_drill_done").is_file()
    assert "resuming from checkpoint" in log
    assert "already holds a finished cpt run of this config" in log and "nothing to do" in log
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    for key in ("loss", "learning_rate", "grad_norm", "tokens_per_s"):  # the metrics a user watches
        assert all(key in e for e in history if "loss" in e), key
    summary = manifest(out)["summary"]
    assert summary["steps"] == 8 and summary["last_loss"] < summary["first_loss"]
    assert summary["mean_tokens_per_s"] > 0
    # the published model loads on its own; optimizer shards stay in Ray's storage
    assert (out / "model.safetensors").is_file() and not list(out.glob("global_step*"))
    # Ray tracks run.num_to_keep checkpoints; the newest holds both ranks' ZeRO optimizer shards
    tracked = json.loads((root / "ray" / "cpt" / "checkpoint_manager_snapshot.json").read_text())
    names = [c["checkpoint_dir_name"] for c in tracked["checkpoint_results"]]
    assert len(names) == 2
    assert len(list((root / "ray" / "cpt" / names[-1] / "checkpoint").glob("global_step*/*optim_states.pt"))) == 2
    assert list((root / "ray" / "cpt" / "tensorboard").rglob("events.out.tfevents.*"))
    # the rerun continued from step 8: its history is the first run's plus steps 9-10
    rerun = losses(root / "cpt-model-10")
    assert [s for s, _ in rerun] == list(range(1, 11)) and rerun[:8] == losses(out)


def test_sft_with_lora_learns_and_publishes_an_adapter(chain):
    root, _ = chain
    out = root / "sft-model"
    assert_learns(out, 8)
    assert (out / "adapter_config.json").is_file() and (out / "tokenizer.json").is_file()
    assert manifest(out)["config"]["model"]["finetune"] == "lora"


def test_dpo_from_the_sft_adapter_learns(chain):
    root, _ = chain
    out = root / "dpo-model"
    logged = losses(out)
    assert len(logged) == 8
    assert abs(logged[0][1] - 0.6931) < 0.01  # policy == reference at the start: loss is ln 2
    assert min(v for _, v in logged[-3:]) < 0.6931
    assert manifest(out)["config"]["dpo"]["beta"] == 0.1
