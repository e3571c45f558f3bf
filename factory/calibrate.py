"""``python -m factory calibrate``: how much clean text and junk each filter rule drops.

Every filter runs on every document independently (not chained), after the config's own
normalisation, so each rule's cost on clean domain text is visible on its own. The
chained result (what a run would drop) is reported too.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document

from core.ray_runtime import init_ray
from factory.config import FactoryConfig
from factory.stages.heuristic_filters import HeuristicFilters
from factory.stages.normalise import Normalise


def read_texts(path: str, text_column: str, limit: int | None) -> list[str]:
    if path.endswith((".jsonl", ".json", ".ndjson")):
        texts = [json.loads(line)[text_column] for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        texts = pq.read_table(path, columns=[text_column])[text_column].to_pylist()
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    return texts[:limit] if limit else texts


def verdicts_batch(batch: pa.Table, config_json: str) -> pa.Table:
    """One column per filter: the rejection reason, or null when the filter keeps the document."""
    config = FactoryConfig.model_validate_json(config_json)
    steps = Normalise(config.normalise).steps()
    filters = HeuristicFilters(config.filters).steps()
    columns: dict[str, list] = {f.name: [] for f in filters}
    for i, text in enumerate(batch["text"].to_pylist()):
        doc = Document(text=text, id=str(i))
        for step in steps:
            step(doc)
        for f in filters:
            rejection = f(doc) if doc.text.strip() else None
            columns[f.name].append(rejection.reason if rejection else None)
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


def run_filters(texts: list[str], config: FactoryConfig) -> pa.Table:
    import ray

    init_ray(config.ray)
    ds = ray.data.from_arrow(pa.table({"text": texts})).repartition(max(1, len(texts) // 500) or 1)
    out = ds.map_batches(verdicts_batch, batch_format="pyarrow", batch_size=config.ray.batch_size,
                         fn_kwargs={"config_json": config.model_dump_json()})
    # gathered on the driver, which already holds ``texts``: calibration reads two labelled samples (clean
    # and junk, --limit each), a tuning set rather than a corpus, and a verdict row is smaller than its text
    return pa.concat_tables(ray.get(out.to_arrow_refs()))


def summarise(verdicts: pa.Table) -> dict:
    n = verdicts.num_rows
    per_filter, chained = {}, [None] * n
    for name in verdicts.column_names:
        reasons = verdicts[name].to_pylist()
        dropped = Counter(r for r in reasons if r is not None)
        per_filter[name] = {"dropped": sum(dropped.values()), "share": sum(dropped.values()) / max(n, 1),
                            "reasons": dict(dropped.most_common())}
        chained = [c or r for c, r in zip(chained, reasons)]
    total = sum(1 for c in chained if c is not None)
    return {"documents": n, "filters": per_filter, "chained": {"dropped": total, "share": total / max(n, 1)}}


def format_report(clean: dict, junk: dict) -> str:
    lines = [f"clean documents: {clean['documents']}, junk documents: {junk['documents']}", "",
             f"{'filter / rule':<48} {'clean dropped':>14} {'junk caught':>12}", "-" * 76]
    for name, stats in clean["filters"].items():
        junk_stats = junk["filters"][name]
        lines.append(f"{name:<48} {stats['share']:>13.2%} {junk_stats['share']:>11.2%}")
        rules = sorted(set(stats["reasons"]) | set(junk_stats["reasons"]),
                       key=lambda r: -stats["reasons"].get(r, 0) - junk_stats["reasons"].get(r, 0))
        for rule in rules:
            c = stats["reasons"].get(rule, 0) / max(clean["documents"], 1)
            j = junk_stats["reasons"].get(rule, 0) / max(junk["documents"], 1)
            lines.append(f"  {rule:<46} {c:>13.2%} {j:>11.2%}")
    lines += ["-" * 76, f"{'all filters, chained (what a run drops)':<48} "
              f"{clean['chained']['share']:>13.2%} {junk['chained']['share']:>11.2%}"]
    return "\n".join(lines)


def calibrate_command(config: FactoryConfig, args) -> dict:
    clean = summarise(run_filters(read_texts(args.clean, args.text_column, args.limit), config))
    junk = summarise(run_filters(read_texts(args.junk, args.text_column, args.limit), config))
    print(format_report(clean, junk))
    report = {"preset": config.preset, "clean_set": args.clean, "junk_set": args.junk, "clean": clean, "junk": junk}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report
