"""Multiple-choice knowledge in MMLU format: each choice's log-likelihood after the question; the
highest wins. ``acc`` uses the raw sum, ``acc_norm`` divides by the length in characters of the choice
itself, not of the scored continuation (``" {choice}"``), as lm-evaluation-harness's ``acc_norm`` does, so
long choices are not penalised for being long."""
from __future__ import annotations

from collections import defaultdict

import pyarrow as pa

from eval.config import EvalConfig
from eval.stats import wilson_interval
from eval.suites.common import Work, write_items

LETTERS = "ABCDEFGHIJ"


def choice_inputs(items: pa.Table, prompt: str, continuation: str) -> pa.Table:
    contexts, continuations = [], []
    for row in items.to_pylist():
        listed = "\n".join(f"{LETTERS[i]}. {choice}" for i, choice in enumerate(row["choices"]))
        contexts.append(prompt.format(question=row["question"], subject=row["subject"].replace("_", " "),
                                      choices=listed))
        continuations.append([continuation.format(choice=choice) for choice in row["choices"]])
    return pa.table({"item_id": items.column("item_id"), "context": contexts, "continuations": continuations})


def picks(logprobs: list[list[float]], choices: list[list[str]]) -> tuple[list[int], list[int]]:
    """The chosen index per item: by raw log-likelihood, and by log-likelihood per character of the choice
    (lm-eval's ``completion_len``; a tie goes to the first choice, as with its argmax)."""
    raw = [max(range(len(lp)), key=lp.__getitem__) for lp in logprobs]
    norm = [max(range(len(lp)), key=lambda i: lp[i] / max(1, len(options[i])))
            for lp, options in zip(logprobs, choices)]
    return raw, norm


def accuracy(correct: list[bool], confidence: float) -> dict:
    n, right = len(correct), sum(correct)
    low, high = wilson_interval(right, n, confidence)
    return {"accuracy": right / n if n else float("nan"), "low": low, "high": high, "n": n}


def summarise(items: pa.Table, scored: pa.Table, confidence: float) -> dict:
    raw, norm = picks(scored.column("logprobs").to_pylist(), items.column("choices").to_pylist())
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


def work(config: EvalConfig, sets: dict[str, pa.Table]) -> list[Work]:
    settings, names = config.multiple_choice, tuple(c.name for c in config.checkpoints)
    return [Work("multiple_choice", name, "choices", dict(add_special_tokens=settings.add_special_tokens),
                 choice_inputs(items, settings.prompt, settings.continuation), names)
            for name, items in sets.items()]


def run(config: EvalConfig, sets: dict[str, pa.Table], scored: dict, output) -> dict:
    results: dict = {}
    for name, items in sets.items():
        for checkpoint in config.checkpoints:
            rows = scored[("multiple_choice", name, checkpoint.name)]
            summary = summarise(items, rows, config.confidence)
            predictions = summary.pop("predictions")
            write_items(output, "multiple_choice", name, checkpoint.name, rows.append_column(
                "answer", items.column("answer")).append_column("pick", pa.array(predictions["raw"])).append_column(
                "pick_norm", pa.array(predictions["norm"])))
            results.setdefault(name, {})[checkpoint.name] = summary
    return results
