"""Quality gate speed and memory: `python -m quality validate` against plain Great Expectations on a pandas
DataFrame of the same data, in one run, interleaved.

Datasets: SFT rows built from the Alpaca sample of $BENCH_DATA (benchmarks/DATA.md) (100k and 1M rows, every conversation distinct),
and the factory's output on the 50k CS arXiv abstracts (scientific preset; less the few abstracts the peer's
PII regexes flag, see build_documents).

The peer is GX as its users run it for the same checks: read the Parquet files into one pandas
DataFrame (only the columns needed), derive the columns GX cannot reach inside a list (the conversation
text, the role sequence), and validate with GX's own row-level expectations: compound/unique ids,
not-null, value lengths, PII regexes, proportion of unique texts, values in set, a role-order regex.

    python benchmarks/quality_gate.py                      # all datasets, 3 interleaved runs each
    python benchmarks/quality_gate.py --rows 100000 --runs 1 --no-documents
Results: medians per dataset and the time and peak-memory ratios, as JSON (--json).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_data import BENCH_DATA  # noqa: E402
from benchmarks.measure import peak_rss_of, run_facts  # noqa: E402
from core.publish import current_run_dir  # noqa: E402

BENCH_CORPUS = BENCH_DATA
SHARD_ROWS = 100_000
# the peer's PII regexes (GX's regex list has no validators: it flags some numbers our rules judge not a phone)
EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
IP = r"\b(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\b"


def peer_flags_pii(text: str) -> bool:
    """Whether the peer's PII regexes (no validators) match ``text``."""
    import re

    from core.pii import PHONE_PATTERN

    return any(re.search(pattern, text) for pattern in (EMAIL, IP, PHONE_PATTERN))


def build_sft(rows: int, out: Path) -> Path:
    """SFT contract rows from Alpaca instructions; the row number keeps every conversation distinct. Alpaca's
    examples that hold PII (emails, phone numbers: ~140 hits per 100k rows) or a blank answer (our gate's
    not_empty check: 40 per 100k rows) are left out, so both gates pass and both are timed on the same successful
    validation (a failing gate also writes its failure report)."""
    from core.contracts import SFT
    from core.pii import find_pii

    def has_pii(text: str) -> bool:  # by our rules or by the peer's regexes
        return find_pii(text) is not None or peer_flags_pii(text)

    every = pq.read_table(BENCH_CORPUS / "alpaca_sample.parquet").to_pylist()
    alpaca = [r for r in every if r["output"].strip() and not has_pii(" ".join((r["instruction"], r["input"], r["output"])))]
    print(f"SFT rows from {len(alpaca):,} Alpaca examples ({len(every) - len(alpaca)} with PII or a blank answer left "
          "out)", flush=True)
    tasks = ["question_answering", "summary", "term_explanation", "free_form"]
    folder = out / "sft"
    folder.mkdir(parents=True)
    for start in range(0, rows, SHARD_ROWS):
        batch = []
        for i in range(start, min(rows, start + SHARD_ROWS)):
            row = alpaca[i % len(alpaca)]
            user = f"{row['instruction']} {row['input']}".strip() + f" (case {i})"
            batch.append({"id": f"sft-{i}", "task_type": tasks[i % 4], "variant": "plain",
                          "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": row["output"]}],
                          "source_doc_id": f"doc-{i}", "generator": "alpaca", "prompt_version": "alpaca@1"})
        pq.write_table(pa.Table.from_pylist(batch, schema=SFT), folder / f"part-{start // SHARD_ROWS:05d}.parquet")
    (out / "manifest.json").write_text(json.dumps({"run_id": "bench", "config": {}}))
    return out


def build_documents(out: Path) -> Path:
    """The factory's own output on the 50k abstracts (scientific preset, filters and dedup as configured), less the
    abstracts the peer's PII regexes flag: effect sizes such as "+34.08%" match its phone regex, which our rules'
    validators judge not a phone (7 of 2,219 documents on the bundled sample). Both gates then pass on the same rows."""
    import yaml

    config, factory_out = out.parent / "factory.yaml", out.parent / "factory_out"
    config.write_text(yaml.safe_dump({
        "output_dir": str(factory_out), "preset": "scientific", "quality": {"gate": False},
        "sources": [{"name": "arxiv-cs", "path": str(BENCH_CORPUS / "arxiv_cs_abstracts.parquet"), "text_column": "text",
                     "id_column": "id", "domain": "domain", "meta_columns": ["title"]}],
        "ray": {"num_cpus": 2},
    }))
    wall, _, _ = peak_rss_of([sys.executable, "-m", "factory", "run", str(config)], ROOT)
    documents = pq.read_table(current_run_dir(factory_out) / "documents")
    flagged = [peer_flags_pii(text) for text in documents.column("text").to_pylist()]
    (out / "documents").mkdir(parents=True)
    pq.write_table(documents.filter(pa.array([not f for f in flagged])), out / "documents" / "part-00000.parquet")
    (out / "manifest.json").write_text(json.dumps({"run_id": "bench", "config": {}}))
    print(f"factory output on the 50k abstracts built in {wall:.0f} s: {documents.num_rows:,} documents, "
          f"{sum(flagged)} flagged by the peer's PII regexes left out", flush=True)
    return out


# --- the peer: plain GX on pandas, as a separate process --------------------------------------------

PEER = r'''
import sys, warnings, logging
warnings.simplefilter("ignore")
logging.getLogger("great_expectations").setLevel(logging.ERROR)
import pandas as pd, pyarrow.parquet as pq, great_expectations as gx
from great_expectations.data_context.types.base import ProgressBarsConfig
from core.pii import PHONE_PATTERN
kind, folder = sys.argv[1], sys.argv[2]
PEER_PII_PATTERNS
E = gx.expectations
if kind == "sft":
    df = pq.read_table(folder, columns=["id", "task_type", "variant", "messages"]).to_pandas()
    df["conversation"] = df["messages"].map(lambda ms: "\n".join(f"{m['role']}: {m['content']}" for m in ms))
    df["roles"] = df["messages"].map(lambda ms: "/".join(m["role"] for m in ms))
    df = df.drop(columns=["messages"])
    text = "conversation"
    expectations = [E.ExpectColumnValuesToBeUnique(column="id"),
                    *(E.ExpectColumnValuesToNotBeNull(column=c) for c in ("id", "task_type", "variant", "conversation")),
                    E.ExpectColumnValuesToMatchRegex(column="roles", regex=r"^(system/)?user/assistant(/user/assistant)*$"),
                    E.ExpectColumnDistinctValuesToBeInSet(column="task_type", value_set=["question_answering", "summary", "term_explanation", "free_form"])]
else:
    df = pq.read_table(folder, columns=["id", "text", "source", "domain"]).to_pandas()
    text = "text"
    expectations = [E.ExpectCompoundColumnsToBeUnique(column_list=["source", "id"]),
                    *(E.ExpectColumnValuesToNotBeNull(column=c) for c in ("id", "text", "source", "domain")),
                    E.ExpectColumnValuesToBeInSet(column="domain", value_set=["domain", "general"])]
expectations += [E.ExpectColumnValueLengthsToBeBetween(column=text, min_value=1, max_value=1_000_000),
                 E.ExpectColumnValuesToNotMatchRegexList(column=text, regex_list=[EMAIL, IP, PHONE_PATTERN]),
                 E.ExpectColumnProportionOfUniqueValuesToBeBetween(column=text, min_value=0.99)]
context = gx.get_context(mode="ephemeral")
context.variables.progress_bars = ProgressBarsConfig(globally=False)
batch = context.data_sources.add_pandas("p").add_dataframe_asset("a").add_batch_definition_whole_dataframe("b")
suite = context.suites.add(gx.ExpectationSuite(name="s"))
for e in expectations:
    suite.add_expectation(e)
result = batch.get_batch(batch_parameters={"dataframe": df}).validate(suite)
print("rows", len(df), "success", result.success)
for r in result.results:  # what failed, when something did
    if not r.success:
        print("failed:", r.expectation_config.type, r.expectation_config.kwargs.get("column"),
              "unexpected:", r.result.get("unexpected_count"))
'''


def timed_runs(datasets: dict[str, tuple[str, Path]], runs: int, work: Path) -> dict:
    peer_script = work / "peer_gx_pandas.py"
    peer_script.write_text(PEER.replace("PEER_PII_PATTERNS", f"EMAIL, IP = {EMAIL!r}, {IP!r}"))
    results = {name: {"ours": [], "peer": []} for name in datasets}
    for run in range(runs):
        for name, (kind, path) in datasets.items():  # interleaved: ours then the peer, dataset by dataset
            data = path / kind  # sft/ or documents/
            # both must pass: a failing run (exit 1, or GX's success False) stops the benchmark
            ours = peak_rss_of([sys.executable, "-m", "quality", "validate", kind, str(path),
                                "--docs-dir", str(work / f"docs-{name}-{run}")], ROOT)
            peer = peak_rss_of([sys.executable, str(peer_script), kind, str(data)], ROOT)
            if "success True" not in peer[2]:
                sys.exit(f"GX on pandas failed on {name}, so the runs do not compare:\n{peer[2][-3000:]}")
            for who, (wall, peak, _) in (("ours", ours), ("peer", peer)):
                results[name][who].append({"wall_s": round(wall, 2), "peak_rss_mb": round(peak / 2**20)})
            print(f"run {run + 1} {name}: ours {ours[0]:.1f} s {ours[1] / 2**20:.0f} MB | "
                  f"GX on pandas {peer[0]:.1f} s {peer[1] / 2**20:.0f} MB", flush=True)
    summary = {}
    for name, by in results.items():
        med = {who: {k: statistics.median(r[k] for r in runs_) for k in ("wall_s", "peak_rss_mb")}
               for who, runs_ in by.items()}
        summary[name] = {"runs": by, "median": med,
                         "speedup_peer_over_ours": round(med["peer"]["wall_s"] / med["ours"]["wall_s"], 2),
                         "memory_ratio_ours_over_peer": round(med["ours"]["peak_rss_mb"] / med["peer"]["peak_rss_mb"], 2)}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000],
                        help="SFT dataset sizes (none: the documents only)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-documents", action="store_true", help="skip the 50k-abstract factory output")
    parser.add_argument("--json", default=str(ROOT / "benchmarks/results/quality_gate.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="quality-bench-"))
    datasets = {f"sft_{n}": ("sft", build_sft(n, work / f"sft_{n}")) for n in args.rows}
    if not args.no_documents:
        datasets["documents_50k_abstracts"] = ("documents", build_documents(work / "documents_50k"))
    result = {**run_facts("great_expectations", "pyarrow"), "command": " ".join(sys.argv),
              "datasets": timed_runs(datasets, args.runs, work)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: {kk: v[kk] for kk in ("median", "speedup_peer_over_ours", "memory_ratio_ours_over_peer")}
                      for k, v in result["datasets"].items()}, indent=2))


if __name__ == "__main__":
    main()
