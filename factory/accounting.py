"""Where every document went: the per-stage funnel and the in = kept + rejected invariant."""
from __future__ import annotations

from collections import Counter, defaultdict

import pyarrow as pa

from core.errors import AccountingError
from factory.pipeline import FUNNEL_STAGES


def _summed(table: pa.Table, columns: list[str], weight: str) -> pa.Table:
    summed = table.group_by(columns).aggregate([(weight, "sum")])
    return summed.select([*columns, f"{weight}_sum"]).rename_columns([*columns, weight])


def _counted(table: pa.Table, columns: list[str]) -> list[tuple]:
    """(values..., rows) per distinct value of ``columns``; a table of counts (column ``n``) is summed."""
    if table.num_rows == 0:
        return []
    grouped = _summed(table, columns, "n") if "n" in table.column_names else \
        table.group_by(columns).aggregate([([], "count_all")])
    return list(zip(*(grouped[c].to_pylist() for c in grouped.column_names)))


def rejects_by_stage(rejects: pa.Table) -> dict[str, Counter]:
    """{stage: Counter({reason: n})}, reason ``<filter>:<rule>`` kept whole; from rejects or their counts."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for stage, reason, n in _counted(rejects, ["stage", "reason"]):
        counts[stage][reason] += n
    return counts


def count_by(table: pa.Table, column: str) -> dict[str, int]:
    return dict(_counted(table, [column]))


def funnel(total_in: int, rejects: pa.Table) -> list[dict]:
    by_stage = rejects_by_stage(rejects)
    rows, remaining = [], total_in
    for stage in FUNNEL_STAGES:
        dropped = by_stage.get(stage, Counter())
        out = remaining - sum(dropped.values())
        rows.append({"stage": stage, "in": remaining, "out": out, "dropped": dict(dropped.most_common())})
        remaining = out
    unknown = sorted(set(by_stage) - set(FUNNEL_STAGES))
    if unknown:
        raise AccountingError(f"rejects name unknown stages {unknown}")
    return rows


def check_invariant(inputs: dict[str, int], kept: dict[str, int], rejected: dict[str, int]) -> dict[str, dict]:
    """Per source: documents in == kept + rejected. Raises ``AccountingError`` naming each source that breaks it."""
    report, broken = {}, []
    for source in sorted(set(inputs) | set(kept) | set(rejected)):
        n_in, n_kept, n_rejected = inputs.get(source, 0), kept.get(source, 0), rejected.get(source, 0)
        report[source] = {"in": n_in, "kept": n_kept, "rejected": n_rejected}
        if n_in != n_kept + n_rejected:
            broken.append(f"{source}: in {n_in} != kept {n_kept} + rejected {n_rejected}")
    if broken:
        raise AccountingError("accounting invariant broken, output not published:\n  " + "\n  ".join(broken))
    return report


def format_funnel(rows: list[dict], top_reasons: int = 6) -> str:
    lines = [f"{'stage':<12} {'in':>9} {'out':>9} {'dropped':>9}  top reasons", "-" * 78]
    for row in rows:
        dropped = sum(row["dropped"].values())
        reasons = ", ".join(f"{r} {n}" for r, n in list(row["dropped"].items())[:top_reasons])
        more = len(row["dropped"]) - top_reasons
        if more > 0:
            reasons += f", +{more} more"
        lines.append(f"{row['stage']:<12} {row['in']:>9} {row['out']:>9} {dropped:>9}  {reasons}")
    return "\n".join(lines)
