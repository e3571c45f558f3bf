"""The recipe's one-page summary (printed at the end and written as summary.md beside the manifest):
what each step did this time, the data funnel, the models' losses and the eval table."""
from __future__ import annotations

import json

from core.publish import read_text, resolve


def _num(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def _gate(entry: dict) -> str:
    quality = entry.get("quality")
    if quality is None:
        return "-"
    return "passed" if quality["success"] else f"FAILED ({', '.join(quality['failed'])})"


def steps_table(entries: dict, statuses: dict[str, str]) -> list[str]:
    rows = [[name, statuses.get(name, "not selected"), _num(e.get("wall_s"), 4) if statuses.get(name) == "ran" else "-",
             e.get("run_id") or "-", _gate(e), e["output"] if e.get("run_id") else "(nothing published)"]
            for name, e in entries.items() if name in statuses]
    return ["## Steps", ""] + _table(["step", "this run", "wall s", "run id", "quality gate", "output"], rows)


def data_lines(entries: dict) -> list[str]:
    facts = {name: e.get("facts", {}) for name, e in entries.items()}
    lines = ["## Data", ""]
    if f := facts.get("factory"):
        lines.append(f"- documents: {_num(f.get('documents_in'))} in, {_num(f.get('documents_kept'))} kept, "
                     f"{_num(f.get('documents_rejected'))} rejected (every one in rejects/ with its reason)")
    if f := facts.get("prepare"):
        lines.append(f"- CPT dataset: {_num(f.get('packed_rows'))} packed rows, "
                     f"{_num(f.get('validation_rows'))} validation rows, domain token share "
                     f"{_num(f.get('domain_token_share'))}")
        if f.get("mixing_warning"):
            lines.append(f"- **WARNING {f['mixing_warning']}**")
    if f := facts.get("synth_sft"):
        lines.append(f"- SFT examples made: {_num(f.get('sft_rows'))} ({_num(f.get('rejects'))} rejects)")
    if f := facts.get("synth_preferences"):
        lines.append(f"- preference triples made: {_num(f.get('preferences_rows'))} ({_num(f.get('rejects'))} rejects)")
    if f := facts.get("review"):
        if f.get("dpo_pairs") == "reviewed":
            lines.append(f"- reviewed: {_num(f.get('approved_pairs'))} approved pairs of {_num(f.get('items'))} loaded "
                         f"({f.get('outcome')}); DPO trained on them")
        else:
            lines.append(f"- reviewed: none of {_num(f.get('items'))} pairs; **DPO trained on the judge-approved "
                         "pairs, unreviewed**")
    return lines


def models_table(entries: dict) -> list[str]:
    rows = [[name.removeprefix("train_"), _num(e["facts"].get("steps")), _num(e["facts"].get("first_loss"), 4),
             _num(e["facts"].get("final_loss"), 4), e["output"]]
            for name, e in entries.items() if name.startswith("train_")]
    return ["## Models", ""] + _table(["model", "steps", "first loss", "final loss", "path"], rows)


def eval_table(eval_dir: str) -> list[str]:
    """Perplexity and multiple-choice accuracy per checkpoint, from the eval run's results.json."""
    text = read_text(f"{eval_dir}/results.json")
    if text is None:
        return []
    results = json.loads(text)
    columns: dict[str, dict[str, str]] = {}
    for name, by_checkpoint in (results.get("perplexity") or {}).items():
        columns[f"{name} perplexity"] = {c: _num(r["perplexity"], 4) for c, r in by_checkpoint.items()}
    for name, by_checkpoint in (results.get("multiple_choice") or {}).items():
        columns[f"{name} acc %"] = {c: _num(100 * r["acc"].get("accuracy", r["acc"].get("value")), 3)
                                    for c, r in by_checkpoint.items()}
    checkpoints = [c["name"] for c in results.get("checkpoints", [])]
    rows = [[c] + [column.get(c, "-") for column in columns.values()] for c in checkpoints]
    return ["## Eval", ""] + _table(["checkpoint", *columns], rows) + ["", f"Full report: {eval_dir}/report.md"]


def summary_page(name: str, storage: str, entries: dict, statuses: dict[str, str], manifest_path: str) -> str:
    lines = [f"# Recipe {name}", "", f"Storage: {storage}  ", f"Lineage: {manifest_path}", ""]
    lines += steps_table(entries, statuses) + [""] + data_lines(entries) + [""]
    if any(n.startswith("train_") for n in entries):
        lines += models_table(entries) + [""]
    if "eval" in entries:  # the eval run recorded, read from its own folder
        lines += eval_table(str(entries["eval"].get("run_path") or resolve(entries["eval"]["output"])))
    return "\n".join(lines) + "\n"
