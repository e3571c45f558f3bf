"""Eval scoring speed: perplexity and multiple-choice tokens/s, ours (batched, on a Ray model actor,
and the same scorer in one process) vs a naive one-example-at-a-time loop, and vs lm-evaluation-harness's
HFLM on the same items when it is installed. One run, same model, same items; results are cross-checked
(perplexity and the multiple-choice picks must agree) before any time is reported.

    .venv/bin/python benchmarks/eval_speed.py --docs 200 --repeats 3

The headline is the default: `ray.enabled: auto` decides between the two ways ours runs (Ray model actors, or
the same scorer in this process) by the preset's rule for this machine and this much work, and its row is
compared with lm-evaluation-harness. The JSON (benchmarks/results/eval_speed.json) carries the commit.

Data: $BENCH_DATA (benchmarks/DATA.md): arxiv_cs_abstracts.parquet (perplexity) and mmlu_cs.parquet
(all 469 questions x 4).
Model: a Llama from a config (no download) with a BPE tokenizer trained on the fly on other abstracts.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.bench_data import BENCH_DATA  # noqa: E402
DATA = BENCH_DATA

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from core import progress  # noqa: E402
from benchmarks.measure import run_facts  # noqa: E402
from eval.config import CheckpointConfig, EvalRayConfig, ModelRuntimeConfig  # noqa: E402
from eval.placement import on_ray  # noqa: E402
from eval.streaming import model_workers  # noqa: E402
from eval.suites import multiple_choice  # noqa: E402
from eval.suites.common import Work, aligned  # noqa: E402

CONTEXT = 512
BATCH = 16


def build_model(root: Path, hidden: int, layers: int) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    texts = pq.read_table(DATA / "arxiv_cs_abstracts.parquet", columns=["text"]).slice(10000, 5000)["text"].to_pylist()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=8192, special_tokens=["<pad>", "<|endoftext|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|endoftext|>",
                                   bos_token="<|endoftext|>")
    fast.save_pretrained(root)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=hidden * 8 // 3,
                         num_hidden_layers=layers, num_attention_heads=hidden // 64, num_key_value_heads=hidden // 64,
                         max_position_embeddings=CONTEXT, pad_token_id=0, bos_token_id=1, eos_token_id=1)
    model = LlamaForCausalLM(config)
    model.save_pretrained(root)
    return root, sum(p.numel() for p in model.parameters())


def items(docs: int) -> tuple[pa.Table, pa.Table]:
    texts = pq.read_table(DATA / "arxiv_cs_abstracts.parquet", columns=["id", "text"]).slice(30000, docs)
    ppl = pa.table({"item_id": texts["id"], "text": texts["text"]})
    mmlu = pq.read_table(DATA / "mmlu_cs.parquet")
    mc = pa.table({"item_id": [f"q{i}" for i in range(mmlu.num_rows)], "subject": mmlu["subject"],
                   "question": mmlu["question"], "choices": mmlu["choices"], "answer": mmlu["answer"]})
    prompt = "The following is a multiple choice question about {subject}.\n\n{question}\nAnswer:"
    return ppl, multiple_choice.choice_inputs(mc, prompt, " {choice}")


def ours(model_dir: Path, ppl: pa.Table, mc: pa.Table, use_ray: bool) -> tuple[dict, dict]:
    ray_config = EvalRayConfig(enabled=use_ray, in_process_max_items=0, concurrency=1, batch_size=64,
                               num_cpus_per_actor=1, num_gpus_per_actor=0, stall_timeout_s=600)
    runtime = ModelRuntimeConfig(device="cpu", dtype="fp32", forward_batch_size=BATCH).model_dump()
    times = {}
    with model_workers(ray_config, runtime) as workers, progress.lines_to(lambda _: None):
        workers.load(CheckpointConfig(name="bench", path=str(model_dir)))  # untimed, as the other methods' loading
        start = time.perf_counter()
        scored = aligned(ppl, workers.map(Work("perplexity", "ppl", "perplexity", dict(
            context_length=CONTEXT, stride=CONTEXT, add_special_tokens=False), ppl, ("bench",)), "ppl"))
        times["perplexity"] = time.perf_counter() - start
        start = time.perf_counter()
        choices = aligned(mc, workers.map(Work("multiple_choice", "mc", "choices", dict(add_special_tokens=True), mc,
                                               ("bench",)), "mc"))
        times["multiple_choice"] = time.perf_counter() - start
    return times, {"nll": scored["nll"].to_pylist(), "tokens": scored["n_tokens"].to_pylist(),
                   "logprobs": choices["logprobs"].to_pylist()}


def naive(model_dir: Path, ppl: pa.Table, mc: pa.Table) -> tuple[dict, dict]:
    """What one writes first: one document (one choice) per forward pass, the model's own loss."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(model_dir).eval()
    times, nll, tokens, logprobs = {}, [], [], []
    start = time.perf_counter()
    with torch.no_grad():
        for text in ppl["text"].to_pylist():
            ids = torch.tensor([tokenizer(text)["input_ids"][:CONTEXT]])
            nll.append(model(ids, labels=ids).loss.item() * (ids.shape[1] - 1))
            tokens.append(ids.shape[1] - 1)
        times["perplexity"] = time.perf_counter() - start
        start = time.perf_counter()
        for context, continuations in zip(mc["context"].to_pylist(), mc["continuations"].to_pylist()):
            row = []
            for continuation in continuations:
                ctx, cont = tokenizer(context)["input_ids"], tokenizer(continuation)["input_ids"]
                ids = torch.tensor([(ctx + cont)[-CONTEXT:]])
                logits = model(ids).logits[0, -len(cont) - 1:-1].log_softmax(-1)
                row.append(float(logits.gather(-1, torch.tensor(cont).unsqueeze(-1)).sum()))
            logprobs.append(row)
        times["multiple_choice"] = time.perf_counter() - start
    return times, {"nll": nll, "tokens": tokens, "logprobs": logprobs}


def lm_eval_harness(model_dir: Path, ppl: pa.Table, mc: pa.Table) -> tuple[dict, dict] | None:
    try:
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM
    except ImportError:
        return None
    lm = HFLM(pretrained=str(model_dir), batch_size=BATCH, max_length=CONTEXT, device="cpu")
    times = {}
    start = time.perf_counter()
    rolling = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (t,), i)
                                        for i, t in enumerate(ppl["text"].to_pylist())], disable_tqdm=True)
    times["perplexity"] = time.perf_counter() - start
    requests = [Instance("loglikelihood", {}, (context, continuation), i)
                for i, (context, conts) in enumerate(zip(mc["context"].to_pylist(), mc["continuations"].to_pylist()))
                for continuation in conts]
    start = time.perf_counter()
    answers = lm.loglikelihood(requests, disable_tqdm=True)
    times["multiple_choice"] = time.perf_counter() - start
    logprobs = [[a[0] for a in answers[i:i + 4]] for i in range(0, len(answers), 4)]
    return times, {"nll": [-r for r in rolling], "logprobs": logprobs}


def picks(logprobs):
    return [max(range(len(lp)), key=lp.__getitem__) for lp in logprobs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks/results/eval_speed.json")
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        model_dir, params = build_model(Path(tmp), args.hidden, args.layers)
        ppl, mc = items(args.docs)
        print(f"model {params / 1e6:.1f}M params, context {CONTEXT}, torch threads {torch.get_num_threads()}; "
              f"{ppl.num_rows} documents, {mc.num_rows} questions x 4 choices")
        use_ray, why = default_placement(ppl.num_rows + mc.num_rows)
        ray_row, local_row = "ours, Ray (1 actor x 1 CPU)", "ours, one process"
        default_row = ray_row if use_ray else local_row
        print(f"the default, ray.enabled: auto, here: {default_row} ({why})")
        runs = {ray_row: lambda: ours(model_dir, ppl, mc, True),
                local_row: lambda: ours(model_dir, ppl, mc, False),
                "naive loop": lambda: naive(model_dir, ppl, mc)}
        try:
            import lm_eval  # noqa: F401
            runs["lm-evaluation-harness HFLM"] = lambda: lm_eval_harness(model_dir, ppl, mc)
        except ImportError:
            print("lm-evaluation-harness not installed: its row is skipped")
        timings, outputs = {name: {"perplexity": [], "multiple_choice": []} for name in runs}, {}
        for repeat in range(args.repeats):
            for name, run in runs.items():
                times, outputs[name] = run()
                for suite, seconds in times.items():
                    timings[name][suite].append(seconds)
            if repeat == 0:  # the methods must agree before any time is reported
                cross_check(outputs, mc.num_rows)
        scored_tokens = sum(outputs["naive loop"]["tokens"])
        print(f"\n| method | perplexity tokens/s | vs naive | multiple-choice questions/s | vs naive |")
        print("|---|---|---|---|---|")
        base = {s: statistics.median(timings["naive loop"][s]) for s in ("perplexity", "multiple_choice")}
        medians = {name: {s: statistics.median(timings[name][s]) for s in base} for name in runs}
        for name in runs:
            p, m = medians[name]["perplexity"], medians[name]["multiple_choice"]
            label = f"**{name} (the default here)**" if name == default_row else name
            print(f"| {label} | {scored_tokens / p:,.0f} | {base['perplexity'] / p:.2f}x | {mc.num_rows / m:.1f} | "
                  f"{base['multiple_choice'] / m:.2f}x |")
        result = {**run_facts("torch", "transformers"),
                  "parameters": params, "documents": ppl.num_rows, "questions": mc.num_rows,
                  "perplexity_tokens": scored_tokens, "repeats": args.repeats, "default": default_row,
                  "default_because": why, "median_s": medians, "runs_s": timings}
        if "lm-evaluation-harness HFLM" in medians:
            theirs = medians["lm-evaluation-harness HFLM"]
            result["default_over_lm_eval"] = {s: round(theirs[s] / medians[default_row][s], 2) for s in base}
            print(f"\nthe default ({default_row}) vs lm-evaluation-harness: perplexity "
                  f"{result['default_over_lm_eval']['perplexity']:.2f}x, multiple choice "
                  f"{result['default_over_lm_eval']['multiple_choice']:.2f}x")
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def default_placement(items: int) -> tuple[bool, str]:
    """Where the preset's ``ray.enabled: auto`` scores ``items`` items of one checkpoint on this machine."""
    import yaml

    preset = yaml.safe_load((REPO / "eval/presets/defaults.yaml").read_text())["ray"]
    return on_ray(EvalRayConfig(**preset), items)


def cross_check(outputs: dict, questions: int) -> None:
    """Every method's multiple-choice picks equal the naive loop's, and its corpus perplexity too (to 1e-4
    relative; lm-eval's rolling log-likelihood also scores each document's first token, so its perplexity is
    over other tokens and only its picks are compared); else the benchmark stops, exit 1, naming the method."""
    reference = outputs["naive loop"]
    scored_tokens = sum(reference["tokens"])
    expected = math.exp(sum(reference["nll"]) / scored_tokens)
    differ = []
    for name, out in outputs.items():
        same_picks = sum(a == b for a, b in zip(picks(out["logprobs"]), picks(reference["logprobs"])))
        ppl_value = math.exp(sum(out["nll"]) / scored_tokens)
        print(f"  check {name}: corpus perplexity {ppl_value:.4f}, multiple-choice picks equal to the naive loop's "
              f"{same_picks}/{questions}")
        if same_picks != questions:
            differ.append(f"{name}: {questions - same_picks} multiple-choice picks differ from the naive loop's")
        if "lm-evaluation-harness" not in name and abs(ppl_value - expected) > 1e-4 * expected:
            differ.append(f"{name}: corpus perplexity {ppl_value:.4f}, the naive loop's {expected:.4f}")
    if differ:
        sys.exit("the methods do not compute the same results; no time is reported:\n  " + "\n  ".join(differ))


if __name__ == "__main__":
    main()
