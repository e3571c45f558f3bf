"""The report's tables, built once from results.json's content and rendered as Markdown and HTML."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


def num(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}" if isinstance(value, float) else str(value)


def with_interval(metric: dict, scale: float = 1.0, digits: int = 1) -> str:
    text = num(metric.get("value", metric.get("accuracy")) * scale, digits)
    if "low" in metric:
        text += f" [{num(metric['low'] * scale, digits)}, {num(metric['high'] * scale, digits)}]"
    return text


def checkpoint_table(checkpoints: list[dict]) -> Table:
    return Table("Checkpoints", ["checkpoint", "path", "base (adapters)", "sha256", "training run"],
                 [[c["name"], c["path"], c.get("base") or "", c["sha256"][:16], (c.get("run") or {}).get("run_id", "")]
                  for c in checkpoints])


def perplexity_tables(results: dict) -> list[Table]:
    sets = list(results)
    checkpoints = list(dict.fromkeys(c for s in sets for c in results[s]))
    header = ["checkpoint"] + [f"{s} {what}" for s in sets for what in ("perplexity", "bits/byte", "doc median [p10, p90]")]
    rows = []
    for c in checkpoints:
        row = [c]
        for s in sets:
            r = results[s][c]
            d = r["document_perplexity"]
            row += [num(r["perplexity"]), num(r["bits_per_byte"], 3),
                    f"{num(d['median'])} [{num(d['p10'])}, {num(d['p90'])}]"]
        rows.append(row)
    return [Table("Perplexity (token-weighted over documents; lower is better)", header, rows,
                  "A CPT model should drop on the domain set; a rise on the general set is forgetting.")]


def choice_tables(results: dict, confidence: float) -> list[Table]:
    tables = []
    level = f"{confidence:.0%}"
    for name, by_checkpoint in results.items():
        rows = [[c, with_interval(r["acc"], 100), with_interval(r["acc_norm"], 100), str(r["acc"]["n"])]
                for c, r in by_checkpoint.items()]
        tables.append(Table(f"Multiple choice: {name} (accuracy %, {level} interval)",
                            ["checkpoint", "acc", "acc_norm", "items"], rows))
        subjects = list(dict.fromkeys(s for r in by_checkpoint.values() for s in r["subjects"]))
        tables.append(Table(f"Multiple choice: {name}, per subject (acc %, {level} interval)",
                            ["subject", "items"] + list(by_checkpoint),
                            [[s, str(next(iter(by_checkpoint.values()))["subjects"][s]["acc"]["n"])]
                             + [with_interval(r["subjects"][s]["acc"], 100) for r in by_checkpoint.values()]
                             for s in subjects]))
    return tables


def generation_tables(results: dict, decoding: dict) -> list[Table]:
    settings = ", ".join(f"{k}={v}" for k, v in decoding.items())
    return [Table(f"Generation: {name} (x100; ROUGE with intervals, corpus BLEU-4)",
                  ["checkpoint", "ROUGE-1", "ROUGE-2", "ROUGE-L", "BLEU-4", "mean new tokens", "items"],
                  [[c, with_interval(r["rouge1"]), with_interval(r["rouge2"]), with_interval(r["rougeL"]),
                    num(r["bleu4"]["value"], 1), num(r["mean_new_tokens"], 1), str(r["n"])]
                   for c, r in by_checkpoint.items()], f"Decoding: {settings}.")
            for name, by_checkpoint in results.items()]


def judge_tables(results: dict) -> list[Table]:
    return [Table("Judge win rate (a over b; both orders; inconsistent verdicts count as ties)",
                  ["a vs b", "wins", "ties", "losses", "win rate % (wins + ties/2)", "inconsistent", "unreadable"],
                  [[f"{r['a']} vs {r['b']}", str(r["wins"]), str(r["ties"]), str(r["losses"]),
                    with_interval(r["win_rate"], 100), str(r["inconsistent"]), str(r["unreadable"])]
                   for r in results.values()])]


def contamination_tables(results: dict) -> list[Table]:
    action = "removed before scoring" if results["decontaminate"] else "kept (decontaminate: false)"
    return [Table(f"Decontamination ({results['ngram']}-gram overlap with the training data; contaminated items "
                  f"{action})", ["suite/set", "items", "contaminated", "too short to check"],
                  [[key, str(c["items"]), str(c["contaminated"]), str(c["too_short_to_check"])]
                   for key, c in results["sets"].items()],
                  f"Training data: {', '.join(results['training_data']) or 'none'}. "
                  "Contaminated items are listed in contamination.parquet.")]


def lm_eval_tables(results: dict) -> list[Table]:
    rows = [[c, task, metric, num(value, 4)] for c, tasks in results.items() for task, metrics in tasks.items()
            for metric, value in metrics.items()]
    return [Table("lm-evaluation-harness", ["checkpoint", "task", "metric", "value"], rows)]


def all_tables(results: dict) -> list[Table]:
    tables = [checkpoint_table(results["checkpoints"])]
    if "decontamination" in results:
        tables += contamination_tables(results["decontamination"])
    if results.get("perplexity"):
        tables += perplexity_tables(results["perplexity"])
    if results.get("multiple_choice"):
        tables += choice_tables(results["multiple_choice"], results["confidence"])
    if results.get("generation"):
        tables += generation_tables(results["generation"], results["decoding"])
    if results.get("judge"):
        tables += judge_tables(results["judge"])
    if results.get("lm_eval"):
        tables += lm_eval_tables(results["lm_eval"])
    return tables
