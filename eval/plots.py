"""Plots of the report (matplotlib, Agg): perplexity per checkpoint and set, accuracy per subject,
judge win/tie/loss shares."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _figure(size: tuple[float, float]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def grouped_bars(ax, groups: list[str], series: dict[str, list[float]], errors: dict[str, np.ndarray] | None = None):
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for k, (label, values) in enumerate(series.items()):
        ax.bar(x + k * width - 0.4 + width / 2, values, width, label=label,
               yerr=None if errors is None else errors[label], capsize=2)
    ax.set_xticks(x, groups, rotation=20, ha="right")
    ax.legend(fontsize=8)


def perplexity_plot(results: dict, path: Path) -> None:
    fig, ax = _figure((7, 3.5))
    checkpoints = list(dict.fromkeys(c for s in results.values() for c in s))
    grouped_bars(ax, checkpoints, {s: [results[s][c]["perplexity"] for c in checkpoints] for s in results})
    ax.set_yscale("log")
    ax.set_ylabel("perplexity (log)")
    ax.set_title("Perplexity per checkpoint: domain vs general")
    _save(fig, path)


def accuracy_plot(name: str, by_checkpoint: dict, path: Path) -> None:
    subjects = list(dict.fromkeys(s for r in by_checkpoint.values() for s in r["subjects"]))
    fig, ax = _figure((max(6, 1.2 * len(subjects)), 3.8))
    series, errors = {}, {}
    for c, r in by_checkpoint.items():
        acc = [r["subjects"][s]["acc"] for s in subjects]
        series[c] = [100 * a["accuracy"] for a in acc]
        errors[c] = np.array([[100 * (a["accuracy"] - a["low"]) for a in acc], [100 * (a["high"] - a["accuracy"]) for a in acc]])
    grouped_bars(ax, subjects, series, errors)
    ax.set_ylabel("accuracy %")
    ax.set_ylim(0, 100)
    ax.set_title(f"Multiple choice {name}: accuracy per subject")
    _save(fig, path)


def win_rate_plot(results: dict, path: Path) -> None:
    fig, ax = _figure((7, 0.6 * len(results) + 1.5))
    labels = [f"{r['a']} vs {r['b']}" for r in results.values()]
    left = np.zeros(len(labels))
    for kind, colour in (("win", "#4c9a2a"), ("tie", "#bbbbbb"), ("loss", "#c0392b")):
        shares = np.array([100 * r[f"{kind}_share"]["value"] for r in results.values()])
        ax.barh(labels, shares, left=left, color=colour, label=kind)
        left += shares
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of prompts")
    ax.legend(fontsize=8)
    ax.set_title("Judge: win / tie / loss of a over b")
    _save(fig, path)


def draw_plots(folder: Path, results: dict) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    if results.get("perplexity"):
        perplexity_plot(results["perplexity"], folder / "perplexity.png")
        names.append("perplexity.png")
    for name, by_checkpoint in (results.get("multiple_choice") or {}).items():
        accuracy_plot(name, by_checkpoint, folder / f"accuracy_{name}.png")
        names.append(f"accuracy_{name}.png")
    if results.get("judge"):
        win_rate_plot(results["judge"], folder / "win_rates.png")
        names.append("win_rates.png")
    return names
