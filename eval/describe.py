"""What an eval run will do, in words, for ``--print-config`` (no model is loaded)."""
from __future__ import annotations

from eval.config import EvalConfig


def eval_plan(config: EvalConfig) -> list[str]:
    suites = {"perplexity": config.perplexity, "multiple choice": config.multiple_choice,
              "generation": config.generation}
    lines = ["checkpoints: " + "; ".join(f"{c.name} = {c.path}" for c in config.checkpoints)]
    lines += [f"{name}: {', '.join(suite.sets) or 'no sets'}" if suite.enabled else f"{name}: off"
              for name, suite in suites.items()]
    if config.judge.enabled:
        lines.append("judge: win rate of " + ", ".join(f"{a} over {b}" for a, b in config.judge.pairs))
    if config.lm_eval.enabled:
        lines.append(f"lm-evaluation-harness tasks: {', '.join(config.lm_eval.tasks)}")
    if config.decontamination.enabled:
        data = ", ".join(t.path for t in config.decontamination.training_data) or "none"
        lines.append(f"decontamination: {config.decontamination.ngram}-word n-grams against {data}")
    return lines + [f"ray: {config.ray.enabled}; output: {config.output_dir} (report.md, report.html, results.json)"]
