"""The charts linked from the Data Docs, drawn from the aggregates the meters kept (histograms and
counts, never rows): lengths, task-type and variant mix, domain token share."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from quality.meters import LENGTH_BINS, DomainTokenShare, Lengths, Meter, Shares


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(7, 3.5))


def _save(plt, fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def lengths_chart(meters: list[Lengths], path: Path) -> None:
    plt, fig, ax = _figure()
    centres = np.sqrt(np.maximum(LENGTH_BINS[:-1], 1) * LENGTH_BINS[1:])
    for meter in meters:
        ax.step(centres, meter.histogram, where="mid", label=meter.name)
    ax.set_xscale("log")
    ax.set_xlabel("characters per row")
    ax.set_ylabel("rows")
    ax.legend()
    _save(plt, fig, path)


def shares_chart(meter: Shares, path: Path) -> None:
    plt, fig, ax = _figure()
    values = sorted(meter.counts, key=str)
    ax.barh([str(v) for v in values], [meter.counts[v] for v in values])
    ax.set_xlabel(f"rows per {meter.column}")
    _save(plt, fig, path)


def domain_chart(meter: DomainTokenShare, path: Path) -> None:
    plt, fig, ax = _figure()
    sides = sorted(meter.tokens)
    ax.bar(sides, [meter.tokens[s] for s in sides])
    if meter.target is not None:
        total = sum(meter.tokens.values())
        ax.axhline(meter.target * total, linestyle="--", color="black", label=f"domain target {meter.target:g}")
        ax.legend()
    ax.set_ylabel("tokens")
    _save(plt, fig, path)


def write_charts(meters: list[Meter], folder: Path) -> list[str]:
    """The charts these meters can draw, as PNG files in ``folder``; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    lengths = [m for m in meters if isinstance(m, Lengths)]
    if lengths:
        lengths_chart(lengths, folder / "lengths.png")
        written.append("lengths.png")
    for meter in meters:
        if isinstance(meter, Shares) and meter.counts:
            shares_chart(meter, folder / meter.chart)
            written.append(meter.chart)
        elif isinstance(meter, DomainTokenShare) and meter.tokens:
            domain_chart(meter, folder / "domain_share.png")
            written.append("domain_share.png")
    return written
