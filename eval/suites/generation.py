"""Generation metrics for SFT-style tasks: ROUGE-1/2/L (rouge-score, F-measure, stemmed) averaged over
items with an interval, and corpus BLEU-4 (sacrebleu, its default 13a tokenizer), both x100."""
from __future__ import annotations

import pyarrow as pa

from eval.config import EvalConfig
from eval.stats import mean_interval
from eval.suites.common import Work, write_items

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def rouge_per_item(predictions: list[str], references: list[str]) -> dict[str, list[float]]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    scores = [scorer.score(reference, prediction) for prediction, reference in zip(predictions, references)]
    return {kind: [100 * s[kind].fmeasure for s in scores] for kind in ROUGE_TYPES}


def bleu4(predictions: list[str], references: list[str]) -> float:
    import sacrebleu

    if not predictions:  # a set emptied by decontamination: no corpus to score (sacrebleu fails on [])
        return float("nan")
    return float(sacrebleu.corpus_bleu(predictions, [references]).score)


def text_metrics(predictions: list[str], references: list[str], confidence: float = 0.95) -> dict:
    metrics = {}
    for kind, values in rouge_per_item(predictions, references).items():
        mean, low, high = mean_interval(values, confidence)
        metrics[kind] = {"value": mean, "low": low, "high": high}
    metrics["bleu4"] = {"value": bleu4(predictions, references)}
    metrics["n"] = len(predictions)
    return metrics


def answers_work(config: EvalConfig, suite: str, name: str, items: pa.Table, checkpoints: tuple[str, ...]) -> Work:
    """Completions of ``items`` (item_id, prompt) with the run's decoding setting."""
    return Work(suite, name, "generation", dict(decoding=config.decoding.model_dump()),
                items.select(["item_id", "prompt"]), checkpoints)


def work(config: EvalConfig, sets: dict[str, pa.Table]) -> list[Work]:
    return [answers_work(config, "generation", name, items, tuple(c.name for c in config.checkpoints))
            for name, items in sets.items()]


def run(config: EvalConfig, sets: dict[str, pa.Table], scored: dict, output) -> dict:
    results: dict = {}
    for name, items in sets.items():
        references = items.column("reference").to_pylist()
        for checkpoint in config.checkpoints:
            answers = scored[("generation", name, checkpoint.name)]
            completions = answers.column("completion").to_pylist()
            metrics = text_metrics(completions, references, config.confidence)
            metrics["mean_new_tokens"] = sum(answers.column("new_tokens").to_pylist()) / max(1, answers.num_rows)
            write_items(output, "generation", name, checkpoint.name,
                        answers.append_column("reference", items.column("reference")))
            results.setdefault(name, {})[checkpoint.name] = metrics
    return results
