"""A synth job end to end: check output, plan (all errors before any request), resolve, write, publish.

Same shape as every job (core.run.PublishedRun): a finished output with the same config hash is a
no-op, work goes to the run's own folder ``<output>/runs/<run id>``, manifest last, and CURRENT then names it.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable

import pyarrow as pa

from core import progress
from core.contracts import PREFERENCE, SFT, SYNTH_REJECTS
from core.llm.requests import RequestStats
from core.parquet import write_rows
from core.errors import ShortfallError
from core.run import PublishedRun
from quality.gate import dropped_summary, gate_before_publish
from synth.config import SynthConfig
from synth.preferences import plan_preferences, run_preferences
from synth.results import JobResult
from synth.sft import plan_sft, run_sft


@dataclass(frozen=True)
class SynthJob:
    plan: Callable  # (config) -> plan; raises before any request
    run: Callable[..., JobResult]  # (plan, config) -> JobResult
    folder: str  # output folder of its rows
    schema: pa.Schema  # the rows' contract
    kind: str  # the quality suite its output must pass


JOBS = {
    "sft": SynthJob(plan_sft, run_sft, "sft", SFT, "sft"),
    "preferences": SynthJob(plan_preferences, run_preferences, "preferences", PREFERENCE, "preferences"),
}


def total_stats(stages: dict[str, RequestStats]) -> dict:
    total = RequestStats()
    for stats in stages.values():
        for key, value in stats.to_dict().items():
            if key == "failures_by_reason":
                total.failures_by_reason = dict(Counter(total.failures_by_reason) + Counter(value))
            else:
                setattr(total, key, getattr(total, key) + value)
    return {**total.to_dict(), "by_stage": {name: s.to_dict() for name, s in stages.items()}}


def refuse_low_yield(job_name: str, counts: dict, min_yield: float, partial, manifest: dict) -> None:
    """ShortfallError (exit 1, nothing published) when fewer than ``min_yield`` of the planned examples survived."""
    planned, survived = counts["planned"], counts["survived"]
    if planned and survived >= min_yield * planned and survived > 0:
        return
    share = f"{survived / planned:.0%}" if planned else "nothing planned"
    raise ShortfallError(f"synth {job_name}: {survived} of {planned} planned examples survived ({share}), below "
                         f"min_yield {min_yield:.0%}; nothing was published. {dropped_summary(manifest, partial)}")


def run_synth(job_name: str, config: SynthConfig, *, overwrite: bool = False) -> dict:
    job = JOBS[job_name]
    run = PublishedRun(config.output_dir, config, f"{job_name} run", overwrite=overwrite)
    if run.finished:
        return run.finished
    plan = job.plan(config)
    gate = gate_before_publish(job.kind, config.quality)
    with run.writing(plan.files, before_publish=gate) as partial:
        progress.say(f"synth {job_name} run {run.run_id} -> {run.output} (answer cache: {config.cache_file()})")
        with run.timed("resolve", "ask the endpoints", "requests"):
            result = job.run(plan, config)
        rows = write_rows(result.rows, job.schema, partial / job.folder)
        rejected = write_rows(result.rejects, SYNTH_REJECTS, partial / "rejects")
        requests = total_stats(result.stats)
        run.manifest.update({
            "job": job_name,
            "counts": result.counts,
            "requests": requests,
            "rejects_by_reason": dict(Counter(r["reason"] for r in result.rejects)),
            "wall_time_s": run.timings["resolve"],
            "outputs": {job.folder: {"path": job.folder, "rows": rows},
                        "rejects": {"path": "rejects", "rows": rejected}},
        })
        # what became of every request and answer: said before the verdict, so a failed run says it too
        summarize_requests(requests, run.manifest["rejects_by_reason"])
        refuse_low_yield(job_name, result.counts, config.min_yield, partial, run.manifest)
    progress.summary(f"wrote {rows} {job.folder} rows and {rejected} rejects to {run.folder} in "
                     f"{run.timings['resolve']} s")
    return run.manifest


def summarize_requests(requests: dict, rejects_by_reason: dict) -> None:
    progress.summary(f"requests: {requests['requests']} needed, {requests['cached_hits']} from cache, "
                     f"{requests['http_attempts']} sent ({requests['retries']} transport retries, "
                     f"{requests['parse_retries']} asked again after an unparseable answer), "
                     f"failures {requests['failures_by_reason'] or 'none'}, "
                     f"tokens {requests['prompt_tokens']} in / {requests['completion_tokens']} out")
    if rejects_by_reason:
        progress.summary("rejects by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(rejects_by_reason.items())))
