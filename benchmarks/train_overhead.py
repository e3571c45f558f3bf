"""Per-step overhead of our trainer (Ray Train, DeepSpeed ZeRO-2 or torch DDP) against plain `torchrun` DDP.

Same Llama, same packed CPT data, same settings (fp32, lr, global batch, steps), on CPU, 2 processes x 1
thread on every side, in one run of this script, plans interleaved:
  torchrun-ddp: `torchrun --nproc_per_node 2` running transformers.Trainer with DDP over gloo; no Ray, no
                DeepSpeed; the batch split by Trainer's DistributedSampler (the peer as its users run it);
  ours-ddp:     `python -m train cpt` with `deepspeed.enabled: false` (torch DDP on 2 Ray Train workers);
  ours-zero2:   `python -m train cpt`, the preset: DeepSpeed ZeRO-2 over gloo on 2 Ray Train workers;
  plain-1proc:  (opt-in) transformers.Trainer in one process with torch's default threads, no DDP: the
                baseline of the superseded 0.96x figure.
Each side's step time is its trainer's token count over the wall time between per-step logs (the first
steps are warm-up and dropped); each plan's figure is the median over runs of each run's median. Wall time is
the whole command (process, Ray and worker start-up included).

  .venv/bin/python benchmarks/train_overhead.py --runs 3                                    # tiny model
  .venv/bin/python benchmarks/train_overhead.py --runs 3 --hidden 768 --layers 8 --window 512 --steps 8
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import train_fixtures as tf  # noqa: E402  (tiny model/tokenizer/data builders; sets offline env)
from benchmarks.measure import run_facts  # noqa: E402
from core.publish import current_run_dir  # noqa: E402

WARMUP = 3
PLANS = ("torchrun-ddp", "ours-ddp", "ours-zero2", "plain-1proc")
DEFAULT_PLANS = PLANS[:3]


def sized_model_dir(root: Path, cli) -> Path:
    """The fixture's tokenizer with a Llama of ``cli.hidden`` x ``cli.layers`` (MLP 8/3 x hidden, head size 64)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tf.build_tokenizer(root)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(AutoTokenizer.from_pretrained(root)), hidden_size=cli.hidden,
        intermediate_size=8 * cli.hidden // 3, num_hidden_layers=cli.layers, num_attention_heads=cli.hidden // 64,
        num_key_value_heads=cli.hidden // 64, max_position_embeddings=max(256, cli.window),
        pad_token_id=0, bos_token_id=1, eos_token_id=3, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(root)
    return root


def parameters(model_dir: Path) -> int:
    from transformers import AutoConfig, AutoModelForCausalLM

    return sum(p.numel() for p in AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir)).parameters())


def step_times(log_history: list[dict], tokens_per_step: int) -> list[float]:
    return [tokens_per_step / e["tokens_per_s"] for e in log_history if "tokens_per_s" in e][WARMUP:]


def hf_trainer_history(config_path: Path, per_device_batch: int, **arguments) -> list[dict]:
    """transformers.Trainer on the config's model and packed data, our collator and throughput log; under
    torchrun it runs DDP (Trainer reads the launcher's environment). Returns its log history."""
    import datasets
    import pyarrow.parquet as pq
    from transformers import Trainer, TrainingArguments

    from train.arguments import trainer_arguments
    from train.callbacks import ThroughputCallback
    from train.config import load_train_config
    from train.document_attention import packed_batch
    from train.model import build_model, build_tokenizer

    config = load_train_config(config_path, "cpt")
    tokenizer = build_tokenizer(config.model)
    table = pq.read_table(config.data.train, columns=["input_ids", "doc_lengths"])
    args = trainer_arguments(config, tempfile.mkdtemp())
    args.update(deepspeed=None, per_device_train_batch_size=per_device_batch, save_strategy="no",
                remove_unused_columns=False, **arguments)
    trainer = Trainer(
        model=build_model(config),
        args=TrainingArguments(**args),
        train_dataset=datasets.Dataset(table),
        data_collator=lambda rows: packed_batch(
            {k: [r[k] for r in rows] for k in ("input_ids", "doc_lengths")}, tokenizer.pad_token_id),
        callbacks=[ThroughputCallback(config)],
    )
    trainer.train()
    return trainer.state.log_history


def torchrun_worker(config_path: Path, per_device_batch: int, history_path: Path) -> None:
    """One rank of the torchrun plan: 1 thread, DDP over gloo; rank 0 writes the log history."""
    import torch

    torch.set_num_threads(1)
    history = hf_trainer_history(config_path, per_device_batch, ddp_backend="gloo")
    if int(os.environ.get("RANK", "0")) == 0:
        history_path.write_text(json.dumps(history))


def timed(command: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def run_plan(plan: str, folder: Path, cli, model: Path, data: Path, tokens_per_step: int) -> dict:
    """One run of ``plan`` in its own folder: its step times and wall seconds."""
    folder.mkdir(parents=True)
    config_path = tf.write_train_config(
        folder / "cpt.yaml", model_path=model, data_path=data, root=folder, name=plan,
        optim={"max_steps": cli.steps, "per_device_batch_size": cli.global_batch // 2, "learning_rate": 1e-3},
        run={"save_steps": cli.steps, "logging_steps": 1, "max_failures": 0},
        deepspeed={"enabled": plan == "ours-zero2", "zero_stage": 2},
    )
    history_path = folder / "history.json"
    if plan == "torchrun-ddp":
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        wall = timed([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                      __file__, "--torchrun-worker", str(config_path), "--global-batch", str(cli.global_batch),
                      "--history", str(history_path)], env)
        history = json.loads(history_path.read_text())
    elif plan == "plain-1proc":
        wall = timed([sys.executable, __file__, "--one-process", str(config_path), "--global-batch",
                      str(cli.global_batch), "--history", str(history_path)])
        history = json.loads(history_path.read_text())
    else:
        wall = timed([sys.executable, "-m", "train", "cpt", str(config_path), "--quiet"])
        published = Path(current_run_dir(folder / f"{plan}-model"))  # the run that CURRENT names
        history = json.loads((published / "trainer_state.json").read_text())["log_history"]
    steps = step_times(history, tokens_per_step)
    return {"median_step_s": statistics.median(steps), "wall_s": wall}


def build_inputs(root: Path, cli) -> tuple[Path, Path]:
    """The model folder and packed CPT data every plan trains on."""
    from transformers import AutoTokenizer

    model = tf.tiny_model_dir(root / "model") if cli.hidden is None else sized_model_dir(root / "model", cli)
    tokenizer = AutoTokenizer.from_pretrained(model)
    # documents repeated until every row is a full window: each step sees the same token count
    stream = [t for _ in range(200) for doc in tf.documents_tokens(tokenizer) for t in doc]
    rows = [{"input_ids": stream[i:i + cli.window], "doc_lengths": [cli.window], "n_tokens": cli.window}
            for i in range(0, len(stream) - cli.window, cli.window)]
    return model, tf.write_cpt(root / "cpt.parquet", rows)


def summarise(runs: dict[str, list[dict]]) -> dict:
    plans = {plan: {"median_step_s": statistics.median(r["median_step_s"] for r in plan_runs),
                    "median_wall_s": statistics.median(r["wall_s"] for r in plan_runs), "runs": plan_runs}
             for plan, plan_runs in runs.items()}
    ratios = {}
    if "torchrun-ddp" in plans:
        base = plans["torchrun-ddp"]
        for plan in ("ours-ddp", "ours-zero2"):
            if plan in plans:
                ratios[f"{plan}_over_torchrun_ddp_step"] = round(plans[plan]["median_step_s"] / base["median_step_s"], 3)
                ratios[f"{plan}_over_torchrun_ddp_wall"] = round(plans[plan]["median_wall_s"] / base["median_wall_s"], 3)
    return {"plans": plans, "ratios": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--window", type=int, default=128, help="tokens per packed row")
    parser.add_argument("--global-batch", type=int, default=4, help="rows per optimizer step, over both processes")
    parser.add_argument("--hidden", type=int, help="a bigger Llama than the test fixture's (hidden 64, 2 layers)")
    parser.add_argument("--layers", type=int, default=8, help="with --hidden")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs of each plan; medians reported")
    parser.add_argument("--plans", default=",".join(DEFAULT_PLANS), help=f"comma-separated, of {', '.join(PLANS)}")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks/results/train_overhead.json")
    parser.add_argument("--torchrun-worker", type=Path, help=argparse.SUPPRESS)  # one rank of torchrun-ddp
    parser.add_argument("--one-process", type=Path, help=argparse.SUPPRESS)  # the plain-1proc run
    parser.add_argument("--history", type=Path, help=argparse.SUPPRESS)
    cli = parser.parse_args()
    if cli.torchrun_worker:
        return torchrun_worker(cli.torchrun_worker, cli.global_batch // 2, cli.history)
    if cli.one_process:
        cli.history.write_text(json.dumps(hf_trainer_history(cli.one_process, cli.global_batch)))
        return
    plans = [plan for plan in PLANS if plan in cli.plans.split(",")]
    if not plans or set(cli.plans.split(",")) - set(PLANS):
        parser.error(f"--plans takes a comma-separated subset of {', '.join(PLANS)}")

    root = Path(tempfile.mkdtemp(prefix="train-overhead-"))
    model, data = build_inputs(root, cli)
    tokens_per_step = cli.global_batch * cli.window
    result = {**run_facts("deepspeed", "torch", "transformers", "ray"),
              "steps": cli.steps, "window": cli.window, "global_batch": cli.global_batch,
              "parameters": parameters(model), "runs_each": cli.runs, "order": plans,
              "load_average_start": os.getloadavg()}
    runs: dict[str, list[dict]] = {plan: [] for plan in plans}
    for i in range(cli.runs):
        for plan in plans:
            run = run_plan(plan, root / f"{plan}-{i}", cli, model, data, tokens_per_step)
            runs[plan].append(run)
            print(f"run {i + 1}/{cli.runs} {plan:>12}: median step {run['median_step_s'] * 1000:7.1f} ms, "
                  f"wall {run['wall_s']:6.1f} s", flush=True)
    result["load_average_end"] = os.getloadavg()
    result.update(summarise(runs))
    cli.json.parent.mkdir(parents=True, exist_ok=True)
    cli.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("commit", "parameters", "ratios")}, indent=2))
    for plan, figures in result["plans"].items():
        print(f"{plan:>12}: median step {figures['median_step_s'] * 1000:7.1f} ms, median wall "
              f"{figures['median_wall_s']:6.1f} s")


if __name__ == "__main__":
    main()
