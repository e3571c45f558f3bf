"""The eval job: every checkpoint on every enabled suite with the same settings, one published report.

Reads top to bottom: check the checkpoints and read the eval sets (errors before any work), find
contaminated items, run the suites, write the report, publish it with a manifest naming every
checkpoint's path and hash.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core import progress
from core.errors import ConfigError
from core.parquet import parquet_files, published_data_dir
from core.adapters import named_base, published_path
from core.publish import published_run_ref
from core.run import PublishedRun
from core.storage import is_uri
from eval import items as eval_items
from eval import lm_eval_adapter
from eval.checkpoints import adapter_base, check_checkpoint, check_context_length, checkpoint_digest, is_adapter
from eval.config import EvalConfig
from eval.contamination import find_contamination
from eval.placement import placed
from eval.report import write_report
from eval.streaming import score_checkpoints
from eval.suites import generation, judge, multiple_choice, perplexity

Sets = dict[tuple[str, str], pa.Table]  # (suite, set name) -> items


def read_sets(config: EvalConfig) -> Sets:
    cap = config.max_items
    sets: Sets = {}
    if config.perplexity.enabled:
        sets.update({("perplexity", n): eval_items.text_items(n, s, cap) for n, s in config.perplexity.sets.items()})
    if config.multiple_choice.enabled:
        sets.update({("multiple_choice", n): eval_items.choice_items(n, s, cap)
                     for n, s in config.multiple_choice.sets.items()})
    if config.generation.enabled:
        sets.update({("generation", n): eval_items.generation_items(n, s, cap)
                     for n, s in config.generation.sets.items()})
    if config.judge.enabled:
        sets[("judge", "prompts")] = eval_items.judge_items(config.judge.prompts, cap)
    return sets


def set_paths(config: EvalConfig) -> list[str]:
    paths = [s.path for suite in (config.perplexity, config.multiple_choice, config.generation) if suite.enabled
             for s in suite.sets.values()]
    return paths + ([config.judge.prompts.path] if config.judge.enabled else [])


def without(sets: Sets, contaminated: pa.Table) -> Sets:
    """The sets with their contaminated items removed."""
    kept = {}
    for (suite, name), table in sets.items():
        mine = contaminated.filter(pc.and_(pc.equal(contaminated.column("suite"), suite),
                                           pc.equal(contaminated.column("set"), name)))
        kept[(suite, name)] = table.filter(pc.invert(pc.is_in(table.column("item_id"), mine.column("item_id"))))
    return kept


def suite_sets(sets: Sets, suite: str) -> dict[str, pa.Table]:
    return {name: table for (s, name), table in sets.items() if s == suite}


SCORED_SUITES = (("perplexity", perplexity), ("multiple_choice", multiple_choice), ("generation", generation))


def model_work(config: EvalConfig, sets: Sets) -> list:
    """What each checkpoint's model does, every suite's: done in one pass per checkpoint (the model loads once)."""
    work = [w for name, suite in SCORED_SUITES if suite_sets(sets, name)
            for w in suite.work(config, suite_sets(sets, name))]
    if ("judge", "prompts") in sets:
        work += judge.work(config, sets[("judge", "prompts")])
    return work


def checkpoint_entries(config: EvalConfig, digests: dict[str, str]) -> list[dict]:
    return [{"name": c.name, "path": c.path if is_uri(c.path) else str(Path(c.path).resolve()),
             "sha256": digests[c.name],
             # on object storage the base as published (adapter_base is this machine's local copy of it)
             "base": (published_path(c.base or named_base(c.path)) if is_uri(c.path) else adapter_base(c))
             if is_adapter(c.path) else None,
             "run": published_run_ref(c.path)}  # the training run that published it, when one did
            for c in config.checkpoints]


def run_eval(config: EvalConfig, *, overwrite: bool = False) -> dict:
    for i, checkpoint in enumerate(config.checkpoints):
        check_checkpoint(checkpoint, f"checkpoints[{i}] ({checkpoint.name})")
        if config.perplexity.enabled:
            check_context_length(checkpoint, config.perplexity.context_length, f"checkpoints[{i}] ({checkpoint.name})")
    progress.say(f"hashing {len(config.checkpoints)} checkpoint(s)")
    digests = {c.name: checkpoint_digest(c) for c in config.checkpoints}
    # a checkpoint retrained in place (same path, new weights) makes a finished report stale
    run = PublishedRun(config.output_dir, config, "eval", overwrite=overwrite,
                       upstream={"checkpoint_sha256": digests})
    if run.finished:
        return run.finished
    sets = read_sets(config)
    if not sets and not config.lm_eval.enabled:
        raise ConfigError("nothing to evaluate: give perplexity/multiple_choice/generation sets, enable the judge "
                          "or lm_eval")
    inputs = [f for path in set_paths(config) for f in parquet_files(published_data_dir(path, eval_items.DATA_FOLDERS),
                                                                     path)]
    progress.say(f"eval run -> {run.output}: {len(config.checkpoints)} checkpoint(s), "
                 + ", ".join(f"{s}/{n} {t.num_rows} items" for (s, n), t in sets.items()))
    config = placed(config, sets)  # ray.enabled: auto decided; the published config keeps "auto"
    with run.writing(inputs) as partial:
        results: dict = {"checkpoints": checkpoint_entries(config, digests), "confidence": config.confidence,
                         "decoding": config.decoding.model_dump(), "run_id": run.run_id}
        if config.decontamination.enabled and sets:
            with run.timed("decontamination", "decontamination: n-grams of the training data", "rows"):
                contaminated, counts = find_contamination(sets, config.decontamination, config.ray)
                pq.write_table(contaminated, partial / "contamination.parquet")  # bounded: rows are eval items
                results["decontamination"] = {
                    "ngram": config.decontamination.ngram, "decontaminate": config.decontamination.decontaminate,
                    "training_data": [t.path for t in config.decontamination.training_data], "sets": counts}
                if config.decontamination.decontaminate:
                    sets = without(sets, contaminated)
                    for suite, name in [key for key, table in sets.items() if table.num_rows == 0]:
                        progress.warn(f"  decontamination removed every item of {suite}/{name}: it is not scored")
                        del sets[(suite, name)]
        work = model_work(config, sets)
        with run.timed("models"):
            scored = score_checkpoints(config, work) if work else {}
        for name, suite in SCORED_SUITES:
            if suite_sets(sets, name):
                with run.timed(name):
                    results[name] = suite.run(config, suite_sets(sets, name), scored, partial)
        if ("judge", "prompts") in sets:
            with run.timed("judge"):
                results["judge"], run.manifest["judge_requests"] = judge.run(
                    config, sets[("judge", "prompts")], scored, partial)
        if config.lm_eval.enabled:
            with run.timed("lm_eval"):
                results["lm_eval"] = lm_eval_adapter.run(config)
        run.manifest["checkpoints"] = results["checkpoints"]
        run.manifest["outputs"] = write_report(partial, results, f"Eval: {', '.join(c.name for c in config.checkpoints)}")
    progress.summary(summary(results))
    # the run's own folder (a local path or a URI): still this report after a later eval republishes
    progress.summary(f"report: {run.folder}/report.md and {run.folder}/report.html")
    return run.manifest


def summary(results: dict) -> str:
    lines = ["eval summary:"]
    for name, by_checkpoint in (results.get("perplexity") or {}).items():
        lines.append(f"  perplexity {name}: " + ", ".join(f"{c} {r['perplexity']:.2f}" for c, r in by_checkpoint.items()))
    for name, by_checkpoint in (results.get("multiple_choice") or {}).items():
        lines.append(f"  multiple choice {name} acc: "
                     + ", ".join(f"{c} {100 * r['acc']['accuracy']:.1f}%" for c, r in by_checkpoint.items()))
    for name, by_checkpoint in (results.get("generation") or {}).items():
        lines.append(f"  generation {name} ROUGE-L / BLEU-4: " + ", ".join(
            f"{c} {r['rougeL']['value']:.1f} / {r['bleu4']['value']:.1f}" for c, r in by_checkpoint.items()))
    for pair in (results.get("judge") or {}).values():
        lines.append(f"  judge {pair['a']} vs {pair['b']}: win rate {100 * pair['win_rate']['value']:.1f}% "
                     f"({pair['wins']}/{pair['ties']}/{pair['losses']}, {pair['inconsistent']} inconsistent)")
    if "decontamination" in results:
        found = sum(c["contaminated"] for c in results["decontamination"]["sets"].values())
        action = "removed" if results["decontamination"]["decontaminate"] else "kept"
        lines.append(f"  decontamination: {found} contaminated item(s), {action}")
    return "\n".join(lines)
