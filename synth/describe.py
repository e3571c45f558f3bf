"""What a synth run will do, in words, for ``--print-config`` (no endpoint is called)."""
from __future__ import annotations

from synth.config import SynthConfig


def synth_plan(job: str, config: SynthConfig) -> list[str]:
    lines = ["endpoints: " + "; ".join(f"{name} = {e.model} at {e.base_url} ({e.concurrency} in flight)"
                                       for name, e in config.endpoints.items())]
    if job == "sft":
        sft = config.sft
        lines += [
            f"input: {config.input.path} (id {config.input.id_column}, text {config.input.text_column}"
            + (f", first {config.input.limit} rows" if config.input.limit else "") + ")",
            f"generator: {sft.generator}; tasks, each document: " +
            ", ".join(f"{task.task_type} ({task.template}, {task.turns} turn(s))" for task in sft.tasks),
            "variants: " + (", ".join(variant.name for variant in sft.variants) or "none"),
            f"grounding: an answer sharing under {sft.grounding_min_overlap:.0%} of its words with the document "
            "is rejected",
        ]
    else:
        prefs = config.preferences
        lines += [
            f"input: the SFT prompts in {prefs.input.path if prefs.input else '(input)'}",
            "candidates: " + ", ".join(f"{g.endpoint} at temperature {g.temperature}" for g in prefs.generators),
            f"judge: {prefs.judge} ({prefs.judge_template}), both orders; a pair is kept when the verdict survives "
            f"the swap; at most {prefs.max_pairs_per_prompt} pair(s) per prompt, status {prefs.review_status}",
        ]
    cache = config.cache_path or f"{config.output_dir}.cache.sqlite"
    gate = "on" if config.quality.gate else "off"
    return lines + [f"answer cache: {cache}; quality gate: {gate}; output: {config.output_dir}"]
