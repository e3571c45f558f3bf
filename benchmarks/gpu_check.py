"""The GPU check (issue 27): the CPT and SFT stage code on one GPU, with and without ZeRO-2/3, on a randomly
initialised ~1B Llama (bf16, SDPA, the presets' gradient checkpointing and micro-batch, 2048 tokens). Each row
reports the measured peak memory (``torch.cuda.max_memory_allocated``) against ``python -m train plan``'s
estimate for the same config, tokens/s and MFU (the stage's own throughput callback).

    python benchmarks/gpu_check.py [--tiny] [--steps N] [--wheels DIR] [--json OUT] [--peak-tflops T]

The stage code runs without Ray (the GPU machine has none, and its wheel is too big to carry): the same
config, model, trainer arguments, DeepSpeed config, packed-batch collation and trainer builders as the stage
loops, with transformers' Trainer (CPT) and the SFT stage's own ``build_trainer`` (trl's SFTTrainer), in one
process of world size 1. Each row runs in a fresh subprocess, so peak memory is the row's own and no
DeepSpeed or accelerate state leaks into the next row. ``--tiny`` runs everything on CPU with a 2-layer Llama
(peak memory: n/a). ``--wheels DIR`` first installs (``--no-deps --no-index``) the wheels in DIR whose
distribution is missing here (deepspeed, trl, ...): benchmarks/GPU_CHECK.md says how to build them.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing can be fetched on the GPU machine
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

ROWS = ["cpt:0", "cpt:2", "cpt:3", "sft:0", "sft:2", "sft:3"]  # stage:ZeRO stage (0: no DeepSpeed)
# TinyLlama-1.1B's shape (Llama 2 vocabulary): about 1.1B parameters
LLAMA_1B = dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048)
LLAMA_TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256)
WARMUP_STEPS = 2  # left out of tokens/s and MFU: the first steps pay for allocation and kernel selection


def install_missing_wheels(folder: Path) -> list[str]:
    """pip-installs the wheels in ``folder`` whose distribution is not installed and that suit this Python
    (a wheel built for another Python is left out, named); returns what was installed."""
    from packaging.tags import sys_tags
    from packaging.utils import parse_wheel_filename

    supported, missing = set(sys_tags()), []
    for wheel in sorted(folder.glob("*.whl")):
        name, _, _, tags = parse_wheel_filename(wheel.name)
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            if tags & supported:
                missing.append(wheel)
            else:
                print(f"{wheel.name}: not for this Python, left out", flush=True)
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
                        *map(str, missing)], check=True)
    return [w.name for w in missing]


def missing_module(*modules: str) -> str | None:
    """The first module (or one they import) that cannot be imported here, or None."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            return exc.name
    return None


# ---- the model, the data and the config of a row (the parent makes the model and data once)

def build_model_dir(root: Path, tiny: bool) -> Path:
    """A randomly initialised Llama saved as a hub checkpoint would be (bf16 weights on GPU), with the tests'
    offline tokenizer (ChatML with trl's generation markers). Not ``train init``: that takes the vocabulary size
    from the tokenizer, and a 1B model's logits need a real vocabulary's."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from tests.train_fixtures import build_tokenizer

    build_tokenizer(root)
    tokenizer = AutoTokenizer.from_pretrained(root)
    shape = LLAMA_TINY | {"vocab_size": len(tokenizer)} if tiny else LLAMA_1B
    config = LlamaConfig(**shape, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=False)
    torch.manual_seed(0)
    # on the GPU when there is one: initialising 1.1B parameters on the CPU takes longer than a row
    with torch.device("cuda" if torch.cuda.is_available() and not tiny else "cpu"):
        model = LlamaForCausalLM(config)
    model.to(torch.float32 if tiny else torch.bfloat16).save_pretrained(root)
    del model
    torch.cuda.empty_cache()  # the rows' processes get the whole GPU
    return root


def write_data(root: Path, model_dir: Path, rows: int, seq_len: int) -> dict[str, Path]:
    """Random packed CPT rows (documents of random lengths, token ids over the whole vocabulary) and SFT
    conversations from the tests' sentences, as JSON lines."""
    import random

    from transformers import AutoConfig

    from tests.train_fixtures import DOCUMENTS, QA

    rng = random.Random(0)
    vocab = AutoConfig.from_pretrained(model_dir).vocab_size
    cpt = root / "cpt.jsonl"
    with cpt.open("w") as out:
        for _ in range(rows):
            lengths, left = [], seq_len
            while left:
                lengths.append(min(left, rng.randint(seq_len // 8, seq_len)))
                left -= lengths[-1]
            out.write(json.dumps({"input_ids": [rng.randrange(vocab) for _ in range(seq_len)],
                                  "doc_lengths": lengths}) + "\n")
    sft = root / "sft.jsonl"
    with sft.open("w") as out:
        for _ in range(rows * max(1, seq_len // 32)):  # conversations of ~35-230 tokens, packed to seq_len
            question, answer = rng.choice(QA)
            # ~25 tokens a sentence: a conversation stays shorter than a packed block (trl cuts a longer one, its
            # answer with it), so every block has targets
            context = " ".join(rng.choices(DOCUMENTS, k=rng.randint(0, seq_len // 256)))
            out.write(json.dumps({"messages": [
                {"role": "system", "content": "answer briefly."},
                {"role": "user", "content": f"{context} {question}"},
                {"role": "assistant", "content": answer}]}) + "\n")
    return {"cpt": cpt, "sft": sft}


def row_config(stage: str, zero: int, options: argparse.Namespace, gpu_memory_gb: float | None):
    """The stage's config: base preset, the stage's preset, then this row's settings (the presets keep their
    gradient checkpointing, attention and micro-batch)."""
    from pydantic import create_model

    from core.config import deep_merge, read_yaml
    from train.config import BASE_PRESET, TrainConfig

    stage_preset = read_yaml(REPO / "train" / "methods" / f"{stage}.yaml")
    row = {
        "stage": stage, "output_dir": str(Path(options.work) / f"{stage}-zero{zero}-model"),
        "model": {"path": str(options.model_dir)},
        "data": {"train": str(options.data[stage]), "max_length": options.seq_len},
        "optim": {"max_steps": options.steps, "gradient_accumulation_steps": 1, "warmup_ratio": 0.0,
                  **({"per_device_batch_size": 2, "learning_rate": 3e-3} if options.tiny else {})},
        "deepspeed": {"enabled": zero > 0, "zero_stage": zero or 2},
        "scaling": {"num_workers": 1, "use_gpu": not options.tiny},
        "run": {"name": f"gpu-check-{stage}-zero{zero}", "storage_path": str(Path(options.work) / "runs"),
                "precision": "fp32" if options.tiny else "bf16",  # bf16 kernels are slow on CPU
                "save_steps": 10**9, "logging_steps": 1, "peak_tflops_per_worker": options.peak_tflops},
        "plan": {"gpu_memory_gb": gpu_memory_gb},
    }
    if options.tiny:
        row["model"]["gradient_checkpointing"] = False
    merged = deep_merge(deep_merge(read_yaml(BASE_PRESET), stage_preset), row)
    if stage == "sft":
        # train.config.config_model without the registry (its discovery imports every stage, and so Ray)
        from train.methods.sft import SftOptions

        return create_model("SftTrainConfig", __base__=TrainConfig, sft=(SftOptions, ...)).model_validate(merged)
    return TrainConfig.model_validate(merged)


# ---- one row, in its own process

def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def cpt_trainer(config, callbacks):
    """cpt.py's loop without Ray Data: the same arguments, model and per-document collation."""
    from transformers import Trainer, TrainingArguments

    from train.arguments import trainer_arguments
    from train.document_attention import packed_batch
    from train.model import apply_lora, build_model, build_tokenizer

    tokenizer = build_tokenizer(config.model)
    rows = read_jsonl(Path(config.data.train))

    def collate(batch: list[dict]) -> dict:
        return packed_batch({key: [row[key] for row in batch] for key in batch[0]}, tokenizer.pad_token_id)

    # before the model (ZeRO-3); the collator needs doc_lengths, a column the model does not take
    args = TrainingArguments(**trainer_arguments(config, config.output_dir), remove_unused_columns=False)
    model = apply_lora(build_model(config), config)
    return Trainer(model=model, args=args, train_dataset=rows, data_collator=collate, processing_class=tokenizer,
                   callbacks=callbacks)


def sft_trainer(config, callbacks):
    import datasets

    from train.methods.sft import build_trainer

    dataset = datasets.Dataset.from_list(read_jsonl(Path(config.data.train)))
    return build_trainer(config, dataset, config.output_dir, callbacks)


def planned_gb(config) -> dict | None:
    """``python -m train plan``'s figures for this config (its estimators are DeepSpeed's)."""
    if missing_module("deepspeed"):
        return None
    from train.plan import plan_memory

    plan = plan_memory(config)
    return {"total": plan.total_gb, "weights": plan.weights_gb, "states": plan.states_gb,
            "activations": plan.activations_gb, "overhead": plan.overhead_gb}


def run_row(stage: str, zero: int, options: argparse.Namespace) -> dict:
    import torch
    from transformers.trainer_utils import SaveStrategy

    from train.callbacks import ThroughputCallback
    from train.deepspeed_config import start_deepspeed

    gpu = torch.cuda.is_available() and not options.tiny
    config = row_config(stage, zero, options, gpu_memory_gb(gpu))
    # before any trainer arguments: with ZeRO-3's alive, transformers would partition the plan's meta-device model
    plan = planned_gb(config)
    # a world of one rank for DeepSpeed (Ray Train sets these on its workers)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(options.port), RANK="0", LOCAL_RANK="0",
                      WORLD_SIZE="1")
    start_deepspeed(config)
    build = cpt_trainer if stage == "cpt" else sft_trainer
    trainer = build(config, [ThroughputCallback(config)])
    # no checkpoint: transformers saves one at the last step, up to ~15 GB a 1B row (weights, fp32 Adam states)
    trainer.args.save_strategy = SaveStrategy.NO
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    steady = logs[WARMUP_STEPS:] or logs[-1:]
    mfu = [entry["mfu"] for entry in steady if "mfu" in entry]
    return {
        "row": f"{stage}:{zero}", "stage": stage, "zero": zero, "steps": trainer.state.global_step,
        "losses": [entry["loss"] for entry in logs], "train_s": seconds,
        "tokens_per_s": statistics.median(entry["tokens_per_s"] for entry in steady if "tokens_per_s" in entry),
        "mfu": statistics.median(mfu) if mfu else None,
        "peak_gb": torch.cuda.max_memory_allocated() / 1024**3 if gpu else None,
        "plan_gb": plan,
        "micro_batch": config.optim.per_device_batch_size, "seq_len": config.data.max_length,
        "gradient_checkpointing": config.model.gradient_checkpointing, "precision": config.run.precision,
    }


def end_process_group() -> None:
    """The process group DeepSpeed started, closed before the interpreter exits: left to its destructors, a
    ZeRO-3 row's gloo threads aborted the process at exit ("terminate called without an active exception")."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def gpu_memory_gb(gpu: bool) -> float | None:
    import torch

    return torch.cuda.get_device_properties(0).total_memory / 1024**3 if gpu else None


# ---- the parent: rows in subprocesses, one line each, a table, the JSON

def figures(result: dict) -> dict[str, str]:
    """A row's figures as printed ("n/a" where not measured: CPU peak memory, MFU without a known peak)."""
    plan, peak = result["plan_gb"], result["peak_gb"]
    return {
        "peak GB": "n/a" if peak is None else f"{peak:.1f}",
        "plan GB": "n/a" if plan is None else f"{plan['total']:.1f}",
        "peak/plan": "n/a" if peak is None or plan is None else f"{peak / plan['total']:.2f}",
        "tokens/s": f"{result['tokens_per_s']:.0f}",
        "MFU": "n/a" if result["mfu"] is None else f"{100 * result['mfu']:.1f}%",
        "first loss": f"{result['losses'][0]:.3f}", "last loss": f"{result['losses'][-1]:.3f}",
    }


def describe_row(result: dict) -> str:
    if "error" in result:
        return f"{result['row']:<6} FAILED: {result['error']}"
    line = "  ".join(f"{name} {value}" for name, value in figures(result).items())
    return f"{result['row']:<6} {line}  ({result['steps']} steps, {result['train_s']:.0f} s)"


def table(results: list[dict]) -> str:
    names = ["row", "peak GB", "plan GB", "peak/plan", "tokens/s", "MFU", "first loss", "last loss"]
    lines = ["| " + " | ".join(names) + " |", "| --- " + "| ---: " * (len(names) - 1) + "|"]
    for result in results:
        cells = ["failed"] * (len(names) - 1) if "error" in result else list(figures(result).values())
        lines.append("| " + " | ".join([result["row"], *cells]) + " |")
    return "\n".join(lines)


def run_in_subprocess(row: str, options: argparse.Namespace, port: int) -> dict:
    out = Path(options.work) / f"{row.replace(':', '-zero')}.json"
    command = [sys.executable, __file__, "--row", row, "--row-json", str(out), "--work", options.work,
               "--steps", str(options.steps), "--port", str(port)]
    command += ["--tiny"] * options.tiny + (["--peak-tflops", str(options.peak_tflops)] if options.peak_tflops else [])
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0 or not out.exists():
        tail = done.stdout.strip().splitlines()[-15:]
        print("\n".join(f"    {line}" for line in tail), flush=True)
        return {"row": row, "error": f"exit {done.returncode}: {tail[-1] if tail else 'no output'}"}
    return json.loads(out.read_text())


def machine_facts() -> dict:
    import torch
    import transformers

    def version(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    return {
        "commit": commit.stdout.strip() or None,  # None where the tree was copied without .git
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": torch.__version__, "transformers": transformers.__version__,
        "deepspeed": version("deepspeed"), "trl": version("trl"), "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a 2-layer Llama on CPU (the test's run)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per row (default 10; tiny 4)")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"which rows (default {','.join(ROWS)})")
    parser.add_argument("--wheels", type=Path, help="install the wheels here whose distribution is missing")
    parser.add_argument("--json", type=Path, help="write the rows and the machine's facts here")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the GPU's dense bf16 peak for MFU (H100/H200/A100 are known by name)")
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--row", default=None, help=argparse.SUPPRESS)  # the child's row
    parser.add_argument("--row-json", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=29511, help=argparse.SUPPRESS)
    options = parser.parse_args()
    options.steps = options.steps or (4 if options.tiny else 10)
    return options


def main() -> int:
    options = arguments()
    if options.wheels:
        installed = install_missing_wheels(options.wheels)
        print(f"installed from {options.wheels}: {', '.join(installed) or 'nothing (all present)'}", flush=True)
    options.seq_len = 64 if options.tiny else 2048
    if options.row:  # a child: one row, its result as JSON
        options.model_dir = Path(options.work) / "model"
        options.data = {stage: Path(options.work) / f"{stage}.jsonl" for stage in ("cpt", "sft")}
        stage, zero = options.row.split(":")
        try:
            Path(options.row_json).write_text(json.dumps(run_row(stage, int(zero), options)))
        finally:
            end_process_group()
        sys.stdout.flush()
        os._exit(0)  # the row is written: no library's thread destructor may turn a finished row into an abort
    missing = missing_module("train.plan", "train.model", "train.arguments", "train.callbacks", "accelerate")
    if missing:
        print(f"missing {missing}, which every row needs: carry its wheel (benchmarks/GPU_CHECK.md)", flush=True)
        return 2
    rows = options.rows.split(",")
    if missing_module("deepspeed"):
        print("deepspeed is not installed (pass --wheels DIR): the ZeRO rows are skipped", flush=True)
        rows = [row for row in rows if row.endswith(":0")]
    missing = missing_module("datasets", "trl")
    if missing and any(row.startswith("sft") for row in rows):
        print(f"{missing} is not installed (pass --wheels DIR): the SFT rows are skipped", flush=True)
        rows = [row for row in rows if not row.startswith("sft")]
    facts = machine_facts()
    print(f"GPU check: {facts['gpu'] or 'CPU (--tiny)'}, torch {facts['torch']}, transformers "
          f"{facts['transformers']}, deepspeed {facts['deepspeed']}, trl {facts['trl']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        options.work = work
        started = time.perf_counter()
        build_model_dir(Path(work) / "model", options.tiny)
        rows_needed = options.steps * (2 if options.tiny else 4)  # the presets' micro-batch: 4 (tiny: 2)
        write_data(Path(work), Path(work) / "model", rows_needed, options.seq_len)
        print(f"model and data ready in {time.perf_counter() - started:.0f} s", flush=True)
        results = []
        for n, row in enumerate(rows):
            results.append(run_in_subprocess(row, options, options.port + n))
            print(describe_row(results[-1]), flush=True)
    print("\n" + table(results), flush=True)
    if options.json:
        options.json.write_text(json.dumps({"machine": facts, "tiny": options.tiny, "steps": options.steps,
                                            "rows": results}, indent=2))
    failed = [r["row"] for r in results if "error" in r or not all(map(math.isfinite, r["losses"]))]
    if failed:
        print(f"failed rows: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
