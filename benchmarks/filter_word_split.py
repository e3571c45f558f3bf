"""The quality filters with datatrove's own splitting vs one shared spaCy pass per document.

The filter stage as the factory builds it (``scientific`` preset unless --preset), after the
factory's own validate + normalise (ftfy, hard wraps) + redact stages, in-process (no Ray), on the
arXiv CS abstracts. Two variants of the same filters:

- ``datatrove``: the filters as datatrove ships them (``filter_steps(share_split=False)``);
- ``shared``: what the factory runs, one ``SharedSplit`` per language (``factory.stages.word_split``).

Identity: both variants on every row (--identity-rows, default all; 0 skips it); the reject stage and reason of
every document and every output text must be the same, or the script fails. Speed: docs/s of the
filter stage alone on the first --speed-rows rows, --repeats runs per variant, interleaved, median
reported. Also reported: spaCy passes per document (calls of the tokenizer's pipeline), how many
documents reach and are rejected by each filter, and with --profile N a cProfile of N documents.

    .venv/bin/python benchmarks/filter_word_split.py --input $DATA/arxiv_cs_abstracts.parquet
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import deep_merge  # noqa: E402
from factory.config import DatatroveFilter, LimitsConfig, NormaliseConfig, RedactConfig, preset_layers  # noqa: E402
from factory.documents import IN_FLIGHT_SCHEMA  # noqa: E402
from factory.stages.document_steps import apply_document_steps  # noqa: E402
from factory.stages.heuristic_filters import HeuristicFilters, filter_steps  # noqa: E402
from factory.stages.normalise import Normalise  # noqa: E402
from factory.stages.redact import Redact  # noqa: E402
from factory.stages.validate import Validate  # noqa: E402
from bench_data import BENCH_DATA  # noqa: E402

VARIANTS = ("datatrove", "shared")


def preset_config(preset: str) -> dict:
    base, chosen = preset_layers({"preset": preset})[-2:]  # the storage defaults come first
    return deep_merge(base, chosen)


def formatted_table(path: Path, config: dict, rows: int | None) -> pa.Table:
    """The corpus (its first ``rows``, or all) as the filter stage sees it: after the factory's
    validate, normalise and redact."""
    raw = pq.read_table(path, columns=["id", "text"]).slice(0, rows)
    n = raw.num_rows
    table = pa.table({
        "id": raw["id"].cast(pa.string()), "text": raw["text"].cast(pa.string()),
        "source": ["arxiv"] * n, "domain": ["domain"] * n, "meta": ["{}"] * n,
        **{column: pa.nulls(n, pa.string()) for column in ("reject_stage", "reject_reason", "reject_detail")},
    }, schema=IN_FLIGHT_SCHEMA)
    table = Validate(LimitsConfig.model_validate(config["limits"]))(table)
    table = Normalise(NormaliseConfig.model_validate(config["normalise"]))(table)
    return Redact(RedactConfig.model_validate(config["redact"]))(table)


class SpacyPasses:
    """Counts runs of the spaCy pipeline (``SpaCyTokenizer._do_tokenize``) of every spaCy tokenizer: datatrove's
    shared one and the factory's own (``factory.stages.word_split.own_tokenizer``)."""

    def __init__(self):
        from datatrove.utils.word_tokenizers import SpaCyTokenizer

        original = SpaCyTokenizer._do_tokenize
        self.count = 0

        def counted(tokenizer, text):
            self.count += 1
            return original(tokenizer, text)

        SpaCyTokenizer._do_tokenize = counted


def clear_datatrove_cache() -> None:
    from datatrove.utils.text import split_into_parts

    split_into_parts.cache_clear()


def run_filters(table: pa.Table, steps: list) -> tuple[pa.Table, float, float]:
    """The filtered table, wall seconds and this process's CPU seconds (steadier on a shared machine)."""
    clear_datatrove_cache()
    start, cpu = time.perf_counter(), time.process_time()
    out = apply_document_steps(table, HeuristicFilters.name, steps)
    return out, time.perf_counter() - start, time.process_time() - cpu


def verdicts(table: pa.Table) -> list[tuple]:
    return list(zip(table["reject_stage"].to_pylist(), table["reject_reason"].to_pylist()))


def funnel(table_in: pa.Table, table_out: pa.Table, names: list[str]) -> list[dict]:
    """Per filter, in run order: documents that reach it and those it rejects, by reason."""
    alive_in = sum(stage is None for stage in table_in["reject_stage"].to_pylist())
    reasons = Counter(reason for stage, reason in verdicts(table_out) if stage == HeuristicFilters.name)
    rows, reaching = [], alive_in
    for name in names:
        mine = {reason: count for reason, count in sorted(reasons.items()) if reason.split(":")[0] == name}
        rows.append({"filter": name, "reach": reaching, "rejected": sum(mine.values()), "reasons": mine})
        reaching -= sum(mine.values())
    return rows


def profile(table: pa.Table, steps: list, top: int) -> dict:
    clear_datatrove_cache()
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    apply_document_steps(table, HeuristicFilters.name, steps)
    profiler.disable()
    wall = time.perf_counter() - start
    stats = pstats.Stats(profiler)
    total = stats.total_tt

    def cumulative(suffix: str) -> float:
        return sum(row[3] for func, row in stats.stats.items() if f"{func[0]}:{func[2]}".endswith(suffix))

    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(top)
    return {
        "docs": table.num_rows, "wall_s_profiled": round(wall, 2),
        "spacy_s": round(cumulative("spacy/language.py:__call__"), 2),
        "spacy_share": round(cumulative("spacy/language.py:__call__") / total, 3),
        "split_into_parts_calls": sum(row[1] for func, row in stats.stats.items() if func[2] == "split_into_parts"),
        "listing": text.getvalue(),
    }


def check_identity(checked: pa.Table, steps: dict, passes: SpacyPasses, names: list[str]) -> tuple[dict, list]:
    """Both variants over ``checked``: timings, spaCy passes per document, and whether every reject
    (stage, reason) and every output text is the same; the funnel of the shared run."""
    outputs, identity = {}, {"rows": checked.num_rows}
    for variant in VARIANTS:
        passes.count = 0
        outputs[variant], seconds, cpu_seconds = run_filters(checked, steps[variant])
        identity[variant] = {"wall_s": round(seconds, 1), "cpu_s": round(cpu_seconds, 1),
                             "docs_per_s": round(checked.num_rows / seconds, 1),
                             "docs_per_cpu_s": round(checked.num_rows / cpu_seconds, 1),
                             "spacy_passes_per_doc": round(passes.count / checked.num_rows, 3)}
        print(f"identity run {variant}: {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU", flush=True)
    identity["same_reject_reasons"] = verdicts(outputs["datatrove"]) == verdicts(outputs["shared"])
    identity["same_texts"] = outputs["datatrove"]["text"].to_pylist() == outputs["shared"]["text"].to_pylist()
    return identity, funnel(checked, outputs["shared"], names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", default=str(BENCH_DATA / "arxiv_cs_abstracts.parquet"))
    parser.add_argument("--preset", default="scientific")
    parser.add_argument("--identity-rows", type=int, default=None, help="rows checked for identity (default all)")
    parser.add_argument("--speed-rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, help="cProfile this many documents per variant")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()

    config = preset_config(args.preset)
    filters = {name: DatatroveFilter.model_validate(entry) for name, entry in config["filters"].items()}
    steps = {"datatrove": filter_steps(filters, share_split=False), "shared": filter_steps(filters)}
    names = [step.name for step in steps["shared"]]
    start = time.perf_counter()
    needed = None if args.identity_rows is None else max(args.identity_rows, args.speed_rows, args.profile)
    table = formatted_table(Path(args.input), config, needed)
    print(f"{table.num_rows} rows formatted in {time.perf_counter() - start:.1f} s; filters: {names}", flush=True)
    passes = SpacyPasses()
    for variant in VARIANTS:  # warm-up: spaCy loads, word lists
        run_filters(table.slice(0, 20), steps[variant])
    result: dict = {"input": args.input, "preset": args.preset, "rows": table.num_rows}

    if args.profile:
        result["profile"] = {}
        for variant in VARIANTS:
            result["profile"][variant] = profile(table.slice(0, args.profile), steps[variant], 25)
            print(f"--- profile {variant} ---\n{result['profile'][variant]['listing']}", flush=True)

    speed = table.slice(0, args.speed_rows)
    wall: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    cpu: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for repeat in range(args.repeats):
        for variant in VARIANTS:
            _, seconds, cpu_seconds = run_filters(speed, steps[variant])
            wall[variant].append(seconds)
            cpu[variant].append(cpu_seconds)
            print(f"speed run {repeat + 1} {variant}: {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU", flush=True)
    if args.repeats:
        result["speed"] = {
            variant: {"rows": speed.num_rows, "wall_s": [round(s, 2) for s in wall[variant]],
                      "cpu_s": [round(s, 2) for s in cpu[variant]],
                      "docs_per_s_median": round(speed.num_rows / statistics.median(wall[variant]), 1),
                      "docs_per_cpu_s_median": round(speed.num_rows / statistics.median(cpu[variant]), 1)}
            for variant in VARIANTS
        }
        for name, seconds in (("wall", wall), ("cpu", cpu)):
            ratio = statistics.median(seconds["datatrove"]) / statistics.median(seconds["shared"])
            result["speed"][f"speedup_{name}"] = round(ratio, 2)

    checked = table if args.identity_rows is None else table.slice(0, args.identity_rows)
    if checked.num_rows:
        result["identity"], result["funnel"] = check_identity(checked, steps, passes, names)

    for entry in result.get("profile", {}).values():
        entry.pop("listing")
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if "identity" in result and not (result["identity"]["same_reject_reasons"] and result["identity"]["same_texts"]):
        sys.exit("FAIL: the shared split changed a verdict or a text")


if __name__ == "__main__":
    main()
