"""CPT, SFT and DPO on 2 Ray Train workers with DeepSpeed over gloo (ZeRO stages 0 to 3), on CPU, tiny model.

One child process (its own local Ray, so the session's 2-CPU Ray stays free) runs the chain a
user runs, through the CLI entry point: CPT, a rerun of the same CPT run with more steps, SFT with
LoRA, and DPO starting from the SFT adapter with LoRA as its reference. The tests then read what was
published and what Ray kept in storage. (Workers lost mid-run with their node, the restart from the last
checkpoint: tests/cluster/test_train_node_loss.py.)
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import train_fixtures as tf
from conftest import REPO, published, subprocess_env

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
            run={"save_steps": 2}),
        "sft": tf.write_train_config(
            root / "sft.yaml", model_path=model, data_path=sft_data, root=root, name="sft",
            model={"finetune": "lora", "gradient_checkpointing": True, "lora": {"r": 8, "alpha": 16, "dropout": 0.0}},
            deepspeed={"zero_stage": 1}, optim={"learning_rate": 5e-3, "max_steps": 8, "per_device_batch_size": 2}),
        # options no other run takes: CPT with a LoRA adapter (and ZeRO-2 with the optimizer offloaded to the CPU),
        # DPO of a full model against a frozen reference copy (on ZeRO-0; SFT above runs ZeRO-1)
        "cpt-lora": tf.write_train_config(
            root / "cpt-lora.yaml", model_path=model, data_path=cpt_data.parent, root=root, name="cpt-lora",
            model={"finetune": "lora", "gradient_checkpointing": True, "lora": {"r": 8, "alpha": 16, "dropout": 0.0}},
            deepspeed={"zero_stage": 2, "offload_optimizer": "cpu"}, optim={"learning_rate": 1e-2, "max_steps": 6}),
        "dpo-full": tf.write_train_config(
            root / "dpo-full.yaml", model_path=root / "cpt-model", data_path=pref_data, root=root, name="dpo-full",
            model={"finetune": "full"}, dpo={"reference": "model", "review_status": ["approved"]},
            deepspeed={"zero_stage": 0}, optim={"learning_rate": 1e-3, "max_steps": 6}),
        # no DeepSpeed at all: torch DDP over gloo on the 2 workers (the path README recommends for small models)
        "ddp": tf.write_train_config(
            root / "ddp.yaml", model_path=model, data_path=cpt_data.parent, root=root, name="ddp",
            deepspeed={"enabled": False}, optim={"max_steps": 6}),
        # ZeRO-3: weights, gradients and optimizer states partitioned over the 2 ranks
        "zero3": tf.write_train_config(
            root / "zero3.yaml", model_path=model, data_path=cpt_data.parent, root=root, name="zero3",
            deepspeed={"zero_stage": 3}, optim={"max_steps": 4}),
    }
    runs = [["cpt", str(configs["cpt"])],
            # the same run name and storage, more steps: a rerun resumes from the latest checkpoint
            ["cpt", str(configs["cpt"]), "--max-steps", "10", "--output-dir", str(root / "cpt-model-10")],
            # the first run again, unchanged: its model is published, nothing is retrained
            ["cpt", str(configs["cpt"])],
            ["sft", str(configs["sft"])],  # DPO on this kind of adapter: tests/cluster/test_recipe_job.py
            ["cpt", str(configs["cpt-lora"])],
            ["dpo", str(configs["dpo-full"])],
            ["cpt", str(configs["ddp"])],
            ["cpt", str(configs["zero3"])]]
    # a torch-extensions lock left by a worker killed mid-build (as a stalled run's teardown did) hangs no run
    stale_lock = root / "torch_extensions" / "deepspeed_shm_comm" / "lock"
    stale_lock.parent.mkdir(parents=True)
    stale_lock.touch()
    proc = subprocess.run([sys.executable, "-c", DRIVER.format(runs=runs)], cwd=REPO, capture_output=True,
                          text=True, timeout=840, env=subprocess_env(PYTHONPATH=f"{REPO}:{REPO / 'tests'}",
                                                                     TORCH_EXTENSIONS_DIR=str(stale_lock.parents[1])))
    (root / "driver.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    return root, proc.stdout + proc.stderr


def manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def losses(model_dir: Path) -> list[tuple[int, float]]:
    history = json.loads((model_dir / "trainer_state.json").read_text())["log_history"]
    return [(e["step"], e["loss"]) for e in history if "loss" in e]


def tracked_checkpoints(root: Path, run: str) -> list[Path]:
    """The checkpoints Ray tracks for ``run``, oldest first."""
    tracked = json.loads((root / "ray" / run / "checkpoint_manager_snapshot.json").read_text())
    return [root / "ray" / run / c["checkpoint_dir_name"] / "checkpoint" for c in tracked["checkpoint_results"]]


def optimizer_shards(root: Path, run: str) -> list[Path]:
    """The ZeRO optimizer-state files (one per rank that holds a partition) of ``run``'s newest checkpoint."""
    return list(tracked_checkpoints(root, run)[-1].glob("global_step*/*optim_states.pt"))


def assert_learns(model_dir: Path, steps: int) -> None:
    logged = losses(model_dir)
    assert [s for s, _ in logged] == list(range(1, steps + 1))
    values = [v for _, v in logged]
    assert sum(values[-3:]) / 3 < values[0] - 0.05, values


def test_cpt_learns_and_resumes_on_rerun(chain):
    root, log = chain
    out = published(root / "cpt-model")
    assert_learns(out, 8)
    assert "resuming from checkpoint" in log
    assert "already holds a finished cpt run of this config" in log and "nothing to do" in log
    assert f"cpt done: model in {out}" in log  # the summary names the run's own folder
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    for key in ("loss", "learning_rate", "grad_norm", "tokens_per_s"):  # the metrics a user watches
        assert all(key in e for e in history if "loss" in e), key
    summary = manifest(out)["summary"]
    assert summary["steps"] == 8 and summary["last_loss"] < summary["first_loss"]
    assert summary["mean_tokens_per_s"] > 0
    # the published model loads on its own; optimizer shards stay in Ray's storage
    assert (out / "model.safetensors").is_file() and not list(out.glob("global_step*"))
    # Ray tracks run.num_to_keep checkpoints; the newest holds both ranks' ZeRO optimizer shards
    assert len(tracked_checkpoints(root, "cpt")) == 2
    assert len(optimizer_shards(root, "cpt")) == 2
    assert list((root / "ray" / "cpt" / "tensorboard").rglob("events.out.tfevents.*"))
    # the rerun continued from step 8: its history is the first run's plus steps 9-10
    rerun = losses(published(root / "cpt-model-10"))
    assert [s for s, _ in rerun] == list(range(1, 11)) and rerun[:8] == losses(out)


def test_every_attempt_says_the_step_it_starts_at(chain):
    import re
    from collections import Counter

    root, log = chain
    # the six runs trained from scratch start at 1, the rerun with more steps at 9 (after the published 8), not at 1
    # again; each attempt (its rank-0 process) says so once
    attempts = re.findall(r"RayTrainWorker pid=(\d+)[^\n]*?\[train\] first step of this attempt: (\d+)", log)
    assert len(attempts) == len(set(attempts)), attempts
    starts = Counter(int(step) for _, step in attempts)
    assert starts == Counter({1: 6, 9: 1}), starts


def test_the_workers_output_is_our_lines_not_library_chatter(chain):
    """What the user reads: no progress bar per model load, no warning a second from Ray Train's placement-group
    cleaner (a local Ray has no dashboard for it to ask), no line printed twice by Ray Train's print patch."""
    _, log = chain
    assert "Loading weights" not in log and "Writing model shards" not in log
    assert "Failed to query Ray Train Controller" not in log and "PlacementGroupCleanerMonitor" not in log
    losses_printed = [line for line in log.splitlines() if "RayTrainWorker" in line and "'loss'" in line]
    assert losses_printed and len(losses_printed) == len(set(losses_printed))


def test_sft_with_lora_learns_and_publishes_an_adapter(chain):
    root, _ = chain
    out = published(root / "sft-model")
    assert_learns(out, 8)
    assert (out / "adapter_config.json").is_file() and (out / "tokenizer.json").is_file()
    assert manifest(out)["config"]["model"]["finetune"] == "lora"


def test_cpt_with_lora_and_the_optimizer_offloaded_to_cpu_learns_and_publishes_an_adapter(chain):
    root, _ = chain
    out = published(root / "cpt-lora-model")
    assert_learns(out, 6)
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").is_file()
    assert manifest(out)["config"]["deepspeed"]["offload_optimizer"] == "cpu"


def test_dpo_of_a_full_model_against_a_frozen_reference_learns(chain):
    import torch
    from safetensors.torch import load_file

    root, _ = chain
    out = published(root / "dpo-full-model")
    logged = losses(out)
    assert len(logged) == 6
    assert abs(logged[0][1] - 0.6931) < 0.01  # the reference is a copy of the start model: loss is ln 2
    assert min(v for _, v in logged[-3:]) < 0.6931
    # the policy moved away from the model it started from (the frozen reference)
    cpt = published(root / "cpt-model")
    start, trained = load_file(cpt / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not torch.equal(start[k], trained[k]) for k in start)
    assert manifest(out)["config"]["dpo"]["reference"] == "model"
    # its config names the CPT output; it trained on (and its manifest names) the run published there
    assert manifest(out)["model_from"]["run_path"] == str(cpt)
    assert manifest(out)["model_from"]["run_id"] == manifest(cpt)["run_id"]


def test_plain_ddp_without_deepspeed_on_two_workers_learns(chain):
    """``deepspeed.enabled: false`` with 2 workers: torch DDP, no DeepSpeed checkpoint files, both ranks' batches in
    every step (as many tokens a step as the ZeRO-2 run of the same data and batch), a whole model published."""
    root, _ = chain
    out = published(root / "ddp-model")
    assert_learns(out, 6)
    assert manifest(out)["config"]["deepspeed"]["enabled"] is False
    assert (out / "model.safetensors").is_file()
    newest = tracked_checkpoints(root, "ddp")[-1]
    assert not list(newest.glob("global_step*")) and (newest / "optimizer.pt").is_file()

    def tokens_a_step(model_dir: Path) -> int:
        history = json.loads((model_dir / "trainer_state.json").read_text())["log_history"]
        return next(e["num_input_tokens_seen"] for e in history if e.get("step") == 1 and "loss" in e)

    assert tokens_a_step(out) == tokens_a_step(published(root / "cpt-model")) > 0


def test_zero3_partitions_the_parameters_and_saves_a_whole_model(chain):
    import re

    from transformers import AutoModelForCausalLM

    root, log = chain
    held = {int(rank): (int(part), int(total)) for rank, part, total in
            re.findall(r"ZeRO-3: rank (\d) holds (\d+) of (\d+) parameters", log)}
    assert set(held) == {0, 1}
    total = held[0][1]
    for part, whole in held.values():
        assert whole == total and part <= 0.55 * total  # each rank keeps about half, not a full copy
    assert sum(part for part, _ in held.values()) >= total
    out = published(root / "zero3-model")
    model = AutoModelForCausalLM.from_pretrained(out)  # the gathered 16-bit weights load with plain transformers
    assert sum(p.numel() for p in model.parameters()) == total
    assert all(p.numel() > 0 for p in model.parameters())
    assert len(losses(out)) == 4


def test_zero_stages_0_and_1_keep_the_optimizer_whole_and_partitioned(chain):
    """The two stages no other run takes: ZeRO-0 (SFT ran ZeRO-1, DPO ZeRO-0) keeps one whole optimizer state in the
    model-states file; ZeRO-1 partitions it over the 2 ranks, one file each."""
    import torch

    root, _ = chain
    assert len(optimizer_shards(root, "sft")) == 2
    assert optimizer_shards(root, "dpo-full") == []
    (states,) = tracked_checkpoints(root, "dpo-full")[-1].glob("global_step*/mp_rank_00_model_states.pt")
    assert torch.load(states, map_location="cpu", weights_only=False)["optimizer"]["state"]
    assert manifest(published(root / "sft-model"))["config"]["deepspeed"]["zero_stage"] == 1
    assert manifest(published(root / "dpo-full-model"))["config"]["deepspeed"]["zero_stage"] == 0
