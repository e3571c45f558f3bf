"""Per-step overhead of the Ray Train + DeepSpeed trainer against a plain transformers run.

Same tiny model (Llama, hidden 64, 2 layers), same packed CPT data, same settings (fp32, lr,
global batch, steps), on CPU, in one run of this script:
  plain: transformers.Trainer in this one process, no Ray, no DeepSpeed, batch = global batch;
  ray:   `python -m train cpt` code path (train.launch.run): 2 Ray Train workers x 1 CPU,
         DeepSpeed ZeRO-2 over gloo (--zero-stage; --no-deepspeed: torch DDP), per-worker batch =
         global batch / 2, data streamed by Ray Data.
Step time is measured the same way for both (the trainer's token count over wall time between
per-step logs); the first steps are warm-up and dropped. Also reports end-to-end wall time.

  .venv/bin/python benchmarks/train_overhead.py [--steps 30] [--window 128]
  .venv/bin/python benchmarks/train_overhead.py --hidden 768 --layers 8 --window 512 --steps 8   # ~57M: compute dominates
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import train_fixtures as tf  # noqa: E402  (tiny model/tokenizer/data builders; sets offline env)

WARMUP = 3


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


def plain_run(config, tokens_per_step: int, threads: int | None = None) -> tuple[list[float], float]:
    import datasets
    import torch
    import pyarrow.parquet as pq
    from transformers import Trainer, TrainingArguments

    from train.arguments import trainer_arguments
    from train.callbacks import ThroughputCallback
    from train.model import build_model, build_tokenizer
    from train.document_attention import packed_batch

    default_threads = torch.get_num_threads()
    torch.set_num_threads(threads or default_threads)
    start = time.perf_counter()
    tokenizer = build_tokenizer(config.model)
    table = pq.read_table(config.data.train, columns=["input_ids", "doc_lengths"])
    args = trainer_arguments(config, tempfile.mkdtemp())
    args.update(deepspeed=None, per_device_train_batch_size=config.optim.per_device_batch_size * 2,
                save_strategy="no", remove_unused_columns=False)
    trainer = Trainer(
        model=build_model(config),
        args=TrainingArguments(**args),
        train_dataset=datasets.Dataset(table),
        data_collator=lambda rows: packed_batch(
            {k: [r[k] for r in rows] for k in ("input_ids", "doc_lengths")}, tokenizer.pad_token_id),
        callbacks=[ThroughputCallback(config)],
    )
    trainer.train()
    torch.set_num_threads(default_threads)
    return step_times(trainer.state.log_history, tokens_per_step), time.perf_counter() - start


def ray_run(config, tokens_per_step: int) -> tuple[list[float], float]:
    from core import progress
    from train.launch import run_training

    start = time.perf_counter()
    with progress.lines_to(lambda _: None):
        run_training(config)
    history = json.loads((Path(config.output_dir) / "trainer_state.json").read_text())["log_history"]
    return step_times(history, tokens_per_step), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--window", type=int, default=128, help="tokens per packed row")
    parser.add_argument("--global-batch", type=int, default=4)
    parser.add_argument("--hidden", type=int, help="a bigger Llama than the test fixture's (hidden 64, 2 layers)")
    parser.add_argument("--layers", type=int, default=8, help="with --hidden")
    parser.add_argument("--zero-stage", type=int, choices=[0, 1, 2, 3], default=2,
                        help="the trainer's DeepSpeed ZeRO stage (0: DeepSpeed's data parallelism without ZeRO)")
    parser.add_argument("--no-deepspeed", action="store_true", help="the trainer with torch DDP instead of DeepSpeed")
    parser.add_argument("--skip-one-thread", action="store_true", help="no 1-thread plain run (the slowest, informative)")
    cli = parser.parse_args()

    from transformers import AutoTokenizer

    from train.config import load_train_config

    root = Path(tempfile.mkdtemp(prefix="train-overhead-"))
    model = tf.tiny_model_dir(root / "model") if cli.hidden is None else sized_model_dir(root / "model", cli)
    tokenizer = AutoTokenizer.from_pretrained(model)
    # documents repeated until every row is a full window: each step sees the same token count
    stream = [t for _ in range(200) for doc in tf.documents_tokens(tokenizer) for t in doc]
    rows = [{"input_ids": stream[i:i + cli.window], "doc_lengths": [cli.window], "n_tokens": cli.window}
            for i in range(0, len(stream) - cli.window, cli.window)]
    data = tf.write_cpt(root / "cpt.parquet", rows)
    path = tf.write_train_config(
        root / "cpt.yaml", model_path=model, data_path=data, root=root, name="bench",
        optim={"max_steps": cli.steps, "per_device_batch_size": cli.global_batch // 2, "learning_rate": 1e-3},
        run={"save_steps": cli.steps, "logging_steps": 1, "max_failures": 0},
        deepspeed={"enabled": not cli.no_deepspeed, "zero_stage": cli.zero_stage},
    )
    config = load_train_config(path, "cpt")
    tokens_per_step = cli.global_batch * cli.window

    import torch

    # torch's default thread count in this process; Ray gives each 1-CPU worker 1 thread
    plain, plain_wall = plain_run(config, tokens_per_step)
    plain1, plain1_wall = ([float("nan")], float("nan")) if cli.skip_one_thread else plain_run(
        config, tokens_per_step, threads=1)
    ray, ray_wall = ray_run(config, tokens_per_step)
    result = {
        "steps": cli.steps, "window": cli.window, "global_batch": cli.global_batch, "parameters": parameters(model),
        "trainer_data_parallelism": "torch DDP" if cli.no_deepspeed else f"DeepSpeed ZeRO-{cli.zero_stage}",
        "plain_threads": torch.get_num_threads(),
        "plain_median_step_s": statistics.median(plain),
        "plain_1thread_median_step_s": statistics.median(plain1),
        "ray_median_step_s": statistics.median(ray),
        "plain_wall_s": plain_wall, "plain_1thread_wall_s": plain1_wall, "ray_wall_s": ray_wall,
    }
    result["step_ratio_ray_over_plain"] = result["ray_median_step_s"] / result["plain_median_step_s"]
    result["step_ratio_ray_over_plain_1thread"] = result["ray_median_step_s"] / result["plain_1thread_median_step_s"]
    result["wall_ratio_ray_over_plain"] = ray_wall / plain_wall
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
