"""A synth job end to end: check output, plan (all errors before any request), resolve, write, publish.

Same shape as the factory run: a finished output with the same config hash is a no-op, work
goes to ``<output>.partial-<run id>`` and is renamed into place with the manifest last.
"""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from factory.common.config_loading import config_hash
from factory.common.manifest import base_manifest, new_run_id
from factory.common.publish import MANIFEST, partial_dir, publish, write_json_atomically
from factory.common.job import announce_finished, check_output_dir, clear_stale_partials
from synth.config import SynthConfig
from synth.contracts import PREFERENCE_SCHEMA, REJECTS_SCHEMA, SFT_SCHEMA
from synth.preferences import plan_preferences, run_preferences
from synth.requests import RequestStats
from synth.sft import plan_sft, run_sft

JOBS = {
    # job: (plan, run, output folder, schema)
    "sft": (plan_sft, run_sft, "sft", SFT_SCHEMA),
    "preferences": (plan_preferences, run_preferences, "preferences", PREFERENCE_SCHEMA),
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


def write_table(rows: list[dict], schema: pa.Schema, folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, folder / "part-0.parquet", compression="zstd")
    return table.num_rows


def run_job(job: str, config: SynthConfig, *, overwrite: bool = False, echo=print) -> dict:
    plan_job, run_planned, folder, schema = JOBS[job]
    output = Path(config.output_dir)
    digest = config_hash(config)
    finished = check_output_dir(output, digest, overwrite, echo)
    if finished:
        announce_finished(output, f"{job} run", digest, finished, echo)
        return finished
    plan = plan_job(config)
    clear_stale_partials(output, echo)
    run_id = new_run_id()
    manifest = base_manifest(run_id, config, plan.files)
    echo(f"synth {job} run {run_id} -> {output} (answer cache: {config.cache_file()})")
    start = time.perf_counter()
    result = run_planned(plan, config, echo)
    wall = round(time.perf_counter() - start, 3)

    partial = partial_dir(output, run_id)
    rows = write_table(result.rows, schema, partial / folder)
    rejected = write_table(result.rejects, REJECTS_SCHEMA, partial / "rejects")
    requests = total_stats(result.stats)
    manifest.update({
        "job": job,
        "counts": result.counts,
        "requests": requests,
        "rejects_by_reason": dict(Counter(r["reason"] for r in result.rejects)),
        "wall_time_s": wall,
        "outputs": {folder: {"path": folder, "rows": rows}, "rejects": {"path": "rejects", "rows": rejected}},
    })
    write_json_atomically(partial / MANIFEST, manifest)
    publish(partial, output)
    echo(f"wrote {rows} {folder} rows and {rejected} rejects to {output} in {wall} s")
    echo(f"requests: {requests['requests']} needed, {requests['cached_hits']} from cache, "
         f"{requests['http_attempts']} sent ({requests['retries']} retries), failures {requests['failures_by_reason'] or 'none'}, "
         f"tokens {requests['prompt_tokens']} in / {requests['completion_tokens']} out")
    if manifest["rejects_by_reason"]:
        echo("rejects by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(manifest["rejects_by_reason"].items())))
    return manifest
