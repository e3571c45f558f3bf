"""Multiple-choice knowledge in MMLU format: each choice's log-likelihood after the question; the
highest wins. ``acc`` uses the raw sum, ``acc_norm`` divides by the choice's length in characters
(lm-evaluation-harness's acc_norm), so long choices are not penalised for being long."""
from __future__ import annotations

from collections import defaultdict

import pyarrow as pa

from eval.config import EvalConfig
from eval.scorers import ChoiceScorer
from eval.stats import wilson_interval
from eval.streaming import map_items
from eval.suites.common import aligned, write_items

LETTERS = "ABCDEFGHIJ"


def choice_inputs(items: pa.Table, prompt: str, continuation: str) -> pa.Table:
    contexts, continuations = [], []
    for row in items.to_pylist():
        listed = "\n".join(f"{LETTERS[i]}. {choice}" for i, choice in enumerate(row["choices"]))
        contexts.append(prompt.format(question=row["question"], subject=row["subject"].replace("_", " "),
                                      choices=listed))
        continuations.append([continuation.format(choice=choice) for choice in row["choices"]])
    return pa.table({"item_id": items.column("item_id"), "context": contexts, "continuations": continuations})


def picks(logprobs: list[list[float]], continuations: list[list[str]]) -> tuple[list[int], list[int]]:
    """The chosen index per item: by raw log-likelihood, and by log-likelihood per character."""
    raw = [max(range(len(lp)), key=lp.__getitem__) for lp in logprobs]
    norm = [max(range(len(lp)), key=lambda i: lp[i] / max(1, len(conts[i]))) for lp, conts in zip(logprobs, continuations)]
    return raw, norm


def accuracy(correct: list[bool], confidence: float) -> dict:
    n, right = len(correct), sum(correct)
    low, high = wilson_interval(right, n, confidence)
    return {"accuracy": right / n if n else float("nan"), "low": low, "high": high, "n": n}


def summarise(items: pa.Table, scored: pa.Table, continuations: list[list[str]], confidence: float) -> dict:
    raw, norm = picks(scored.column("logprobs").to_pylist(), continuations)
    answers = items.column("answer").to_pylist()
    subjects = items.column("subject").to_pylist()
    by_subject: dict[str, list[int]] = defaultdict(list)
    for i, subject in enumerate(subjects):
        by_subject[subject].append(i)
    return {
        "acc": accuracy([p == a for p, a in zip(raw, answers)], confidence),
        "acc_norm": accuracy([p == a for p, a in zip(norm, answers)], confidence),
        "subjects": {subject: {"acc": accuracy([raw[i] == answers[i] for i in rows], confidence),
                               "acc_norm": accuracy([norm[i] == answers[i] for i in rows], confidence)}
                     for subject, rows in sorted(by_subject.items())},
        "predictions": {"raw": raw, "norm": norm},
    }


def run(config: EvalConfig, sets: dict[str, pa.Table], output, echo) -> dict:
    settings = config.multiple_choice
    results: dict = {}
    for name, items in sets.items():
        inputs = choice_inputs(items, settings.prompt, settings.continuation)
        continuations = inputs.column("continuations").to_pylist()
        for checkpoint in config.checkpoints:
            scored = aligned(items, map_items(
                inputs, ChoiceScorer,
                dict(checkpoint=checkpoint.model_dump(), runtime=config.model.model_dump(), seed=config.seed),
                config.ray, echo, f"multiple choice {name} / {checkpoint.name}"))
            summary = summarise(items, scored, continuations, config.confidence)
            predictions = summary.pop("predictions")
            write_items(output, "multiple_choice", name, checkpoint.name, scored.append_column(
                "answer", items.column("answer")).append_column("pick", pa.array(predictions["raw"])).append_column(
                "pick_norm", pa.array(predictions["norm"])))
            results.setdefault(name, {})[checkpoint.name] = summary
    return results
