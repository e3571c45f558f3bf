"""Generation metrics for SFT-style tasks: ROUGE-1/2/L (rouge-score, F-measure, stemmed) averaged over
items with an interval, and corpus BLEU-4 (sacrebleu, its default 13a tokenizer), both x100."""
from __future__ import annotations

import pyarrow as pa

from eval.config import EvalConfig
from eval.scorers import Generator
from eval.stats import mean_interval
from eval.streaming import map_items
from eval.suites.common import aligned, write_items

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def rouge_per_item(predictions: list[str], references: list[str]) -> dict[str, list[float]]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    scores = [scorer.score(reference, prediction) for prediction, reference in zip(predictions, references)]
    return {kind: [100 * s[kind].fmeasure for s in scores] for kind in ROUGE_TYPES}


def bleu4(predictions: list[str], references: list[str]) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_bleu(predictions, [references]).score)


def text_metrics(predictions: list[str], references: list[str], confidence: float = 0.95) -> dict:
    metrics = {}
    for kind, values in rouge_per_item(predictions, references).items():
        mean, low, high = mean_interval(values, confidence)
        metrics[kind] = {"value": mean, "low": low, "high": high}
    metrics["bleu4"] = {"value": bleu4(predictions, references)}
    metrics["n"] = len(predictions)
    return metrics


def generate_answers(config: EvalConfig, checkpoint, items: pa.Table, echo, label: str) -> pa.Table:
    """Completions of one checkpoint for ``items`` (item_id, prompt), in the items' order."""
    return aligned(items, map_items(
        items.select(["item_id", "prompt"]), Generator,
        dict(checkpoint=checkpoint.model_dump(), runtime=config.model.model_dump(),
             decoding=config.decoding.model_dump(), seed=config.seed),
        config.ray, echo, label))


def run(config: EvalConfig, sets: dict[str, pa.Table], output, echo) -> dict:
    results: dict = {}
    for name, items in sets.items():
        references = items.column("reference").to_pylist()
        for checkpoint in config.checkpoints:
            answers = generate_answers(config, checkpoint, items, echo, f"generation {name} / {checkpoint.name}")
            completions = answers.column("completion").to_pylist()
            metrics = text_metrics(completions, references, config.confidence)
            metrics["mean_new_tokens"] = sum(answers.column("new_tokens").to_pylist()) / max(1, answers.num_rows)
            write_items(output, "generation", name, checkpoint.name,
                        answers.append_column("reference", items.column("reference")))
            results.setdefault(name, {})[checkpoint.name] = metrics
    return results
