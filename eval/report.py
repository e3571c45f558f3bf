"""The report: results.json, report.md and report.html (the same tables), and the plots they show."""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

from eval.plots import draw_plots
from eval.tables import Table, all_tables


def markdown(table: Table) -> str:
    lines = [f"## {table.title}", "", "| " + " | ".join(table.header) + " |",
             "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table.rows]
    return "\n".join(lines + (["", table.note] if table.note else []))


def html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    note = f"<p>{html.escape(table.note)}</p>" if table.note else ""
    return f"<h2>{html.escape(table.title)}</h2><table><tr>{head}</tr>{body}</table>{note}"


STYLE = ("body{font-family:sans-serif;margin:2em;max-width:75em}table{border-collapse:collapse;margin:1em 0}"
         "td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left}th{background:#eee}img{max-width:100%}")


def without_nan(value):
    """NaN (a metric of an empty set) as null: results.json stays strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: without_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_nan(v) for v in value]
    return value


def write_report(output: Path, results: dict, title: str) -> list[str]:
    """Writes the report files into ``output``; returns their names."""
    (output / "results.json").write_text(json.dumps(without_nan(results), indent=2, sort_keys=True, default=str,
                                                    allow_nan=False) + "\n")
    tables = all_tables(results)
    plots = draw_plots(output / "plots", results)
    md = [f"# {title}", "", f"Run {results['run_id']}.", ""]
    md += [markdown(t) + "\n" for t in tables]
    md += [f"![{p}](plots/{p})" for p in plots]
    (output / "report.md").write_text("\n".join(md) + "\n")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1><p>Run {html.escape(results['run_id'])}.</p>"
            + "".join(html_table(t) for t in tables)
            + "".join(f"<p><img src='plots/{html.escape(p)}' alt='{html.escape(p)}'></p>" for p in plots)
            + "</body></html>")
    (output / "report.html").write_text(page)
    return ["results.json", "report.md", "report.html"] + [f"plots/{p}" for p in plots]
