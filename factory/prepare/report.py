"""The stats report: ``report.md`` with plots in ``report/`` next to the CPT dataset.

Plots: document length (tokens) before and after mixing, the factory's filter funnel plus the
mixing step, curriculum bucket sizes, domain token share before/after vs target, and packing
(pieces per row, efficiency).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from factory.prepare.pack_splits import PackedSplits
from factory.prepare.split import TRAIN, VALIDATION

REPORT = "report.md"


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(7, 3.6))


def _save(plt, fig, folder: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(folder / name, dpi=90)
    plt.close(fig)
    return f"report/{name}"


def length_histogram(folder: Path, before: np.ndarray, after: np.ndarray) -> str:
    plt, fig, ax = _figure()
    both = np.concatenate([before, after]) if before.size or after.size else np.array([1, 2])
    bins = np.logspace(np.log10(max(both.min(), 1)), np.log10(max(both.max(), 2)), 40)
    ax.hist(before, bins=bins, alpha=0.6, label=f"factory output ({before.size} docs)")
    ax.hist(after, bins=bins, alpha=0.6, label=f"CPT dataset ({after.size} docs)")
    ax.set_xscale("log")
    ax.set_xlabel("tokens per document (EOS included)")
    ax.set_ylabel("documents")
    ax.legend()
    return _save(plt, fig, folder, "lengths.png")


def funnel_chart(folder: Path, stages: list[tuple[str, int]]) -> str:
    plt, fig, ax = _figure()
    names, counts = zip(*stages)
    ax.barh(range(len(stages)), counts)
    ax.set_yticks(range(len(stages)), names)
    ax.invert_yaxis()
    ax.set_xlabel("documents remaining")
    return _save(plt, fig, folder, "funnel.png")


def bucket_chart(folder: Path, buckets: dict[str, int], tokens: dict[str, int]) -> str:
    plt, fig, ax = _figure()
    keys = sorted(buckets, key=int)
    ax.bar([k for k in keys], [buckets[k] for k in keys], label="documents")
    ax2 = ax.twinx()
    ax2.plot(keys, [tokens[k] for k in keys], "o-", color="black", label="tokens")
    ax.set_xlabel("curriculum bucket (0 = clean/easy)")
    ax.set_ylabel("documents")
    ax2.set_ylabel("tokens")
    ax2.set_ylim(bottom=0)
    return _save(plt, fig, folder, "buckets.png")


def domain_chart(folder: Path, before: dict[str, int], after: dict[str, int], target: float | None) -> str:
    plt, fig, ax = _figure()
    for i, (label, tokens) in enumerate((("before mixing", before), ("after mixing", after))):
        total = max(sum(tokens.values()), 1)
        ax.bar(i, tokens.get("domain", 0) / total, color="tab:blue", label="domain" if i == 0 else None)
        ax.bar(i, tokens.get("general", 0) / total, bottom=tokens.get("domain", 0) / total, color="tab:orange",
               label="general" if i == 0 else None)
    if target is not None:
        ax.axhline(target, color="black", linestyle="--", label=f"target {target:.0%}")
    ax.set_xticks([0, 1], ["before mixing", "after mixing"])
    ax.set_ylabel("share of tokens")
    ax.legend(loc="lower right")
    return _save(plt, fig, folder, "domain_ratio.png")


def pieces_chart(folder: Path, pieces_per_row: list[int]) -> str:
    plt, fig, ax = _figure()
    if pieces_per_row:
        ax.hist(pieces_per_row, bins=np.arange(0.5, max(pieces_per_row) + 1.5))
    ax.set_xlabel("document pieces per packed row (train)")
    ax.set_ylabel("rows")
    return _save(plt, fig, folder, "packing.png")


def write_report(output: Path, manifest: dict, factory_manifest: dict, before, packed: PackedSplits) -> str:
    folder = output / "report"
    folder.mkdir(parents=True, exist_ok=True)
    train, mixing, grouping = manifest["splits"][TRAIN], manifest["mixing"], manifest["grouping"]
    after = np.asarray(packed[TRAIN].stats.doc_tokens + packed[VALIDATION].stats.doc_tokens)
    stages = [(row["stage"], row["out"]) for row in factory_manifest.get("stages", [])]
    stages.append(("mixing (CPT dataset)", int(after.size)))
    plots = {
        "Document lengths": length_histogram(folder, before["n_tokens"].to_numpy(), after),
        "Filter funnel": funnel_chart(folder, stages),
        "Curriculum buckets (train)": bucket_chart(folder, train["bucket_documents"], train["bucket_tokens"]),
        "Domain token share": domain_chart(folder, mixing["tokens_before"], mixing["tokens_after"],
                                           mixing["target_domain_token_fraction"]),
        "Packing": pieces_chart(folder, packed[TRAIN].stats.rows_docs),
    }
    seq_len = manifest["config"]["packing"]["seq_len"]
    lines = [
        "# CPT dataset report", "",
        f"Run `{manifest['run_id']}` (config hash `{manifest['config_hash']}`) from factory run "
        f"`{manifest['factory_run']['run_id']}`.", "",
        "| | train | validation |", "| --- | ---: | ---: |",
    ]
    validation = manifest["splits"][VALIDATION]
    for key in ("documents", "tokens", "rows", "packing_efficiency"):
        lines.append(f"| {key} | {train[key]} | {validation[key]} |")
    lines += [
        "", f"* rows of {seq_len} tokens, no padding; only the last row of a split may be shorter.",
        f"* domain token share: {mixing['achieved_domain_token_fraction']} "
        f"(target {mixing['target_domain_token_fraction']}); {mixing['documents_left_out']} documents left out by mixing.",
        f"* curriculum bucket edges on `curriculum_score`: {[round(e, 4) for e in manifest['curriculum']['bucket_edges']]}",
    ]
    if grouping.get("enabled"):
        lines.append(
            f"* grouping ({grouping['embedder']}, {grouping['coarse_clusters']} coarse clusters): mean cosine similarity "
            f"of documents sharing a packed row {grouping['row_neighbour_similarity']} vs random pairs "
            f"{grouping['random_pair_similarity']}."
        )
    for title, path in plots.items():
        lines += ["", f"## {title}", "", f"![{title}]({path})"]
    (output / REPORT).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return REPORT
