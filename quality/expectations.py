"""Hand the checks to Great Expectations: whole-dataset measurements as a one-row table (each check a
column, its expectation a range), sampled rows as a table with row-level expectations. GX judges
every check, keeps the results, and renders the Data Docs (HTML)."""
from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from quality.checks import Check


@dataclass
class SampledCheck:
    """A row-level check GX runs on a hash sample of rows (costly measurements such as token counts)."""

    name: str
    description: str
    column: str  # a column of the sample table
    low: float | None
    high: float | None
    how: str


@dataclass
class Verdict:
    check: Check
    success: bool | None  # None: not measurable here, so not judged


CHARTS = "../charts/"  # from the suite pages (expectations/<suite>.html) to the charts folder


def suite_notes(checks: list[Check]) -> list[str]:
    """Markdown on the suite's page: what each expectation asserts and which way it runs, then the charts."""
    lines = [f"- **{c.name}**: {c.description}. Runs on: {c.how}." for c in checks]
    charts = sorted({c.chart for c in checks if c.chart})
    return ["\n".join(lines), *(f"![{chart}]({CHARTS}{chart})" for chart in charts)]


def described(check: Check) -> str:
    """The line GX shows for the expectation on the validation page."""
    return f"{check.name}: {check.description} ({check.how}); must be {check.expected()}"


def _context(docs_dir: Path):
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(site_name="quality", site_config={
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir.resolve())},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    return gx, context


def _run_suite(gx, context, name: str, frame, expectations: list, notes: list[str]) -> list:
    """Validate ``frame`` against ``expectations`` through a Checkpoint that updates the Data Docs; returns
    the expectation results in the order given."""
    asset = context.data_sources.add_pandas(name).add_dataframe_asset(name)
    suite = context.suites.add(gx.ExpectationSuite(name=name, notes=notes))
    for expectation in expectations:
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(gx.ValidationDefinition(
        name=name, data=asset.add_batch_definition_whole_dataframe(name), suite=suite))
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name=name, validation_definitions=[definition], result_format={"result_format": "COMPLETE"},
        actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["quality"])]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = checkpoint.run(batch_parameters={"dataframe": frame})
    results = next(iter(result.run_results.values())).results
    by_column = {r.expectation_config.kwargs["column"]: r for r in results}
    return [by_column[e.column] for e in expectations]


def validate_with_gx(kind: str, checks: list[Check], sample, sampled: list[SampledCheck], docs_dir: Path,
                     examples: int) -> list[Verdict]:
    """GX's verdict on every check (sampled ones become checks with examples from the sample's rows)."""
    import pandas as pd

    gx, context = _context(docs_dir)
    judged = [c for c in checks if c.observed is not None]
    verdicts = {id(c): Verdict(c, None) for c in checks}
    if judged:
        frame = pd.DataFrame([{c.column: float(c.observed) for c in judged}])
        expectations = [gx.expectations.ExpectColumnValuesToBeBetween(
            column=c.column, min_value=c.low, max_value=c.high, description=described(c)) for c in judged]
        results = _run_suite(gx, context, f"{kind}_whole_dataset", frame, expectations, suite_notes(checks))
        for check, result in zip(judged, results):
            verdicts[id(check)] = Verdict(check, bool(result.success))
    out = [verdicts[id(c)] for c in checks]
    if sample is not None and sampled:
        frame = sample.to_pandas()
        specs = [Check(s.name, s.description, None, s.low, s.high, how=s.how) for s in sampled]
        expectations = [gx.expectations.ExpectColumnValuesToBeBetween(
            column=s.column, min_value=s.low, max_value=s.high, description=described(c)) for s, c in zip(sampled, specs)]
        results = _run_suite(gx, context, f"{kind}_sample", frame, expectations, suite_notes(specs))
        for spec, result in zip(sampled, results):
            bad = result.result.get("unexpected_index_list") or []
            check = Check(spec.name, spec.description, int(result.result.get("unexpected_count") or 0), 0, 0,
                          [str(frame["row"].iloc[i]) for i in bad[:examples]], how=spec.how)
            out.append(Verdict(check, bool(result.success)))
    context.build_data_docs(site_names=["quality"])
    return out
