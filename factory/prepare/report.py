"""The stats report: ``report.md`` with plots in ``report/`` next to the CPT dataset.

Plots: document length (tokens) before and after mixing, the factory's filter funnel plus the
mixing step, curriculum bucket sizes, domain token share before/after vs target, and packing
(pieces per row, efficiency).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from factory.prepare.lengths import plot_bins
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


def length_histogram(folder: Path, before: dict[int, int], after: dict[int, int]) -> str:
    """Documents per length bin ({bin of lengths.LENGTH_EDGES: documents}) before and after mixing."""
    plt, fig, ax = _figure()
    edges, (before_counts, after_counts) = plot_bins([before, after])
    for counts, label in ((before_counts, "factory output"), (after_counts, "CPT dataset")):
        ax.hist(edges[:-1], bins=edges, weights=counts, alpha=0.6, label=f"{label} ({int(counts.sum())} docs)")
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


def pieces_chart(folder: Path, rows_by_pieces: dict[int, int]) -> str:
    """Packed rows per number of document pieces in a row."""
    plt, fig, ax = _figure()
    if rows_by_pieces:
        pieces = sorted(rows_by_pieces)
        ax.hist(pieces, bins=np.arange(0.5, pieces[-1] + 1.5), weights=[rows_by_pieces[p] for p in pieces])
    ax.set_xlabel("document pieces per packed row (train)")
    ax.set_ylabel("rows")
    return _save(plt, fig, folder, "packing.png")


def write_report(output: Path, manifest: dict, factory_manifest: dict, lengths_before: dict[int, int],
                 packed: PackedSplits) -> str:
    """``lengths_before``: the factory output's documents per length bin (lengths.LENGTH_EDGES)."""
    folder = output / "report"
    folder.mkdir(parents=True, exist_ok=True)
    train, mixing, grouping = manifest["splits"][TRAIN], manifest["mixing"], manifest["grouping"]
    lengths_after = packed[TRAIN].stats.length_docs + packed[VALIDATION].stats.length_docs
    stages = [(row["stage"], row["out"]) for row in factory_manifest.get("stages", [])]
    stages.append(("mixing (CPT dataset)", packed[TRAIN].stats.docs + packed[VALIDATION].stats.docs))
    plots = {
        "Document lengths": length_histogram(folder, lengths_before, lengths_after),
        "Filter funnel": funnel_chart(folder, stages),
        "Curriculum buckets (train)": bucket_chart(folder, train["bucket_documents"], train["bucket_tokens"]),
        "Domain token share": domain_chart(folder, mixing["tokens_before"], mixing["tokens_after"],
                                           mixing["target_domain_token_fraction"]),
        "Packing": pieces_chart(folder, packed[TRAIN].stats.pieces_rows),
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
        *([f"* **Warning**: {mixing['warning']}."] if mixing.get("warning") else []),
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
