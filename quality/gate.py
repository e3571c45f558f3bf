"""Validate a dataset: every check of its kind's suite, judged by Great Expectations, with Data Docs,
a one-screen summary and an entry for its manifest. ``gate_before_publish`` is what a job hands to
``PublishedRun.writing`` so that its output is validated before CURRENT names it."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from core import progress
from core.errors import QualityGateError, ShortfallError
from core.parquet import open_parquet
from core.storage import is_uri
from quality.charts import write_charts
from quality.checks import Check
from quality.config import GateSettings, QualityConfig, load_quality_config
from quality.datasets import locate
from quality.expectations import Verdict, validate_with_gx
from quality.scan import hash_sample, measure
from quality.schema import schema_check
from quality.suites import build_suite
from quality.tokens import with_context_tokens

DOCS = "quality"  # the Data Docs folder inside a validated run
REMOTE_DOCS = "quality-docs"  # under the working directory: the Data Docs of a dataset on object storage


@dataclass
class GateResult:
    kind: str
    path: Path | str  # a URI for a dataset on object storage
    rows: int
    verdicts: list[Verdict]
    docs: Path  # the Data Docs' index.html

    @property
    def failed(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.success is False]

    @property
    def success(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        judged = [v for v in self.verdicts if v.success is not None]
        head = "passed" if self.success else f"FAILED {len(self.failed)} of {len(judged)} expectations"
        lines = [f"quality gate ({self.kind}) on {self.path}: {head} ({len(judged)} expectations, {self.rows} rows)"]
        for verdict in self.failed:
            check = verdict.check
            lines.append(f"  FAIL {check.name:<28} observed {check.observed:g}, expected {check.expected()}"
                         f"  [{check.how.split(' (')[0]}]")
            if check.examples:
                lines.append(f"       e.g. {'; '.join(check.examples)}")
        unjudged = [v.check for v in self.verdicts if v.success is None]
        for check in unjudged:
            lines.append(f"  not judged: {check.name}: {check.description}")
        lines.append(f"  Data Docs: {self.docs}")
        return "\n".join(lines)

    def manifest_entry(self) -> dict:
        # relative inside the run: a run staged locally for object storage is read from where it is uploaded
        inside = not is_uri(self.path) and self.docs.is_relative_to(self.path)
        return {
            "kind": self.kind, "success": self.success, "rows": self.rows,
            "validated_at": datetime.now(timezone.utc).isoformat(),
            "data_docs": str(self.docs.relative_to(self.path) if inside else self.docs),
            "expectations": [
                {"name": v.check.name, "success": v.success, "observed": v.check.observed,
                 "expected": v.check.expected() if v.check.observed is not None else None,
                 "runs_on": v.check.how, "examples": v.check.examples}
                for v in self.verdicts
            ],
        }


def not_measured(checks: list[Check], missing: set[str]) -> list[Check]:
    for check in checks:
        check.observed = None
        check.description += f" (not measured: column(s) {sorted(missing)} missing)"
    return checks


def row_floor(rows: int, min_rows: int) -> Check:
    return Check("rows", f"the dataset holds at least {min_rows} row(s): an empty or near-empty output is a failed "
                 "run, never a published one", rows, low=min_rows)


def validate(kind: str, path: str | Path, config: QualityConfig | None = None, docs_dir: str | Path | None = None,
             manifest: dict | None = None, min_rows: int | None = None) -> GateResult:
    """Run ``kind``'s suite over the dataset at ``path``; ``manifest`` stands in for one not yet written;
    ``min_rows``: the row floor (default the thresholds' ``min_rows``)."""
    config = config or load_quality_config()
    dataset = locate(kind, path, manifest)
    suite = build_suite(dataset, config)
    schema, present = schema_check(dataset.files, suite.contract, config.examples)
    usable = [m for m in suite.meters if set(m.columns) <= present]
    rows = measure(dataset, usable)
    checks = [schema, row_floor(rows, min_rows or config.min_rows)] + [c for m in usable for c in m.checks()]
    for meter in suite.meters:
        if meter not in usable:
            checks += not_measured(meter.checks(), set(meter.columns) - present)
    for part, meters in suite.side_meters.items():
        measure(dataset, meters, parts={part: dataset.extra[part]})
        checks += [c for m in meters for c in m.checks()]
    checks += suite.unmeasurable
    sample = None
    if suite.sampled and set(suite.sample_columns) <= present:
        sample = hash_sample(dataset, set(suite.sample_columns), suite.context.sample_rows, rows)
        sample = with_context_tokens(sample, suite.context) if sample is not None else None
    docs = Path(docs_dir) if docs_dir else default_docs(dataset.root)
    write_charts([*usable, *(m for meters in suite.side_meters.values() for m in meters)], docs / "charts")
    verdicts = validate_with_gx(kind, checks, sample, suite.sampled, docs, config.examples)
    return GateResult(kind, dataset.root, rows, verdicts, docs / "index.html")


def default_docs(root: Path | str) -> Path:
    """Where the Data Docs go unless told: quality/ in the run validated (beside plain Parquet); for a dataset on
    object storage a local folder named after its URI (``quality-docs/s3/bucket/...``), as GX renders to disk."""
    if is_uri(root):
        return Path(REMOTE_DOCS, *str(root).replace("://", "/", 1).rstrip("/").split("/")).resolve()
    root = Path(root)
    return (root if root.is_dir() else root.parent) / DOCS


def gate_before_publish(kind: str, settings: GateSettings):
    """The ``before_publish`` hook of a job's ``PublishedRun.writing``. The run's folder is where its files stay
    once published, so the Data Docs it names are in their final place. With the gate off, the hook only holds the
    row floor (``min_rows``): an empty output is never published."""

    def gate(partial: Path | str, manifest: dict, staging: Path) -> None:
        thresholds = load_quality_config(settings.config)
        floor = settings.min_rows or thresholds.min_rows
        if not settings.gate:
            rows = sum(open_parquet(f, "output").metadata.num_rows for f in locate(kind, partial, manifest).files)
            if rows < floor:
                raise ShortfallError(shortfall(kind, rows, floor, partial, manifest))
            return
        # the Data Docs go in the run's staging folder, so they are published with it (on object storage too,
        # where ``partial`` is the run's folder on the store and ``staging`` the local files uploaded with it)
        docs = Path(staging) / DOCS
        result = validate(kind, partial, thresholds, docs, manifest=manifest, min_rows=floor)
        manifest["quality"] = {**result.manifest_entry(), "data_docs": str(Path(DOCS) / "index.html")}
        progress.summary(result.summary())  # the gate's verdict: shown even with -q
        if result.rows < floor:
            raise ShortfallError(shortfall(kind, result.rows, floor, partial, manifest))
        if not result.success:
            raise QualityGateError(
                f"the {kind} output breaks {len(result.failed)} quality expectation(s); nothing was published. "
                f"The run is kept for inspection in {partial}, which no reader reads (Data Docs: {result.docs}); "
                "fix the data or the thresholds (quality.config), or set quality.gate: false")

    return gate


def shortfall(kind: str, rows: int, floor: int, partial: Path | str, manifest: dict) -> str:
    """Why a run with too few rows failed: the floor, the top reasons rows were dropped, where the rejects are."""
    return (f"the {kind} output has {rows} row(s), fewer than quality.min_rows {floor}; nothing was published. "
            f"{dropped_summary(manifest, partial)}")


def dropped_summary(manifest: dict, partial: Path | str, top: int = 5) -> str:
    """The top reasons rows were dropped, as the run's manifest counts them (a job's ``rejects_by_reason``, the
    factory's per-stage ``dropped``), and the folder of its rejects."""
    reasons = Counter(manifest.get("rejects_by_reason") or {})
    for stage in manifest.get("stages") or []:
        reasons.update(stage.get("dropped") or {})
    said = (f"Top reasons rows were dropped: {', '.join(f'{why} {n}' for why, n in reasons.most_common(top))}"
            if reasons else "No row was rejected on the way")
    rejects = (manifest.get("outputs") or {}).get("rejects")
    where = f"; the rejects are in {str(partial).rstrip('/')}/{rejects['path']}" if rejects else ""
    return f"{said}{where} (the run is kept for inspection in {partial}, which no reader reads)."
