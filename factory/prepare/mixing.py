"""Domain/general mixing at a target share of tokens.

Ray Data's ``mix`` interleaves streams by row counts; we need a token ratio over the whole set,
and the global curriculum sort decides the interleaving anyway. So the documents of the over-represented
domain label (the ``domain`` column: ``domain`` or ``general``) are subsampled to a token budget: every
document gets a fixed random bin (by id hash), per-bin token sums are added up per block and combined on the
driver, and that label keeps the bins whose running total lands closest to the budget. Which documents are
kept never depends on block layout.

When the target needs a large cut (little general text), ``mixing.mode: capped`` (the default) limits the cut to
``max_cut_fraction`` of that label's tokens and misses the target; ``exact_ratio`` cuts to it. Both say so loudly.
"""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from factory.prepare.hashing import document_fraction


def token_budgets(totals: dict[str, int], domain_fraction: float | None) -> dict[str, int]:
    """{domain_label: tokens to keep} for the label that must shrink; empty when nothing is cut."""
    domain, general = totals.get("domain", 0), totals.get("general", 0)
    if domain_fraction is None or domain == 0 or general == 0:
        return {}
    if domain / (domain + general) > domain_fraction:
        return {"domain": round(general * domain_fraction / (1 - domain_fraction))}
    return {"general": round(domain * (1 - domain_fraction) / domain_fraction)}


def capped_budgets(totals: dict[str, int], budgets: dict[str, int], max_cut_fraction: float) -> dict[str, int]:
    """``budgets`` with each label's cut limited to ``max_cut_fraction`` of its tokens (the target may be missed)."""
    return {domain_label: max(budget, math.ceil(totals[domain_label] * (1 - max_cut_fraction)))
            for domain_label, budget in budgets.items()}


def planned_share(totals: dict[str, int], budgets: dict[str, int]) -> float | None:
    """The domain token share the budgets give (the target, or what a capped cut reaches)."""
    after = {domain_label: min(tokens, budgets.get(domain_label, tokens)) for domain_label, tokens in totals.items()}
    total = after.get("domain", 0) + after.get("general", 0)
    return round(after.get("domain", 0) / total, 6) if total else None


def cut_warning(totals: dict[str, int], needed: dict[str, int], kept: dict[str, int], max_cut_fraction: float,
                domain_fraction: float | None) -> str | None:
    """A sentence with the numbers when reaching the target share needs cutting more than ``max_cut_fraction`` of
    one domain label's tokens: the user expects their corpus to be trained on, so a large cut is never silent."""
    for domain_label, budget in needed.items():
        share_cut = 1 - budget / totals[domain_label]
        if share_cut <= max_cut_fraction:
            continue
        other = "general" if domain_label == "domain" else "domain"
        after = {**totals, domain_label: kept[domain_label]}
        planned = after["domain"] / (after["domain"] + after["general"])
        what = (f"cut to {budget:,} tokens ({share_cut:.1%} left out) as mixing.mode exact_ratio asks"
                if kept[domain_label] == budget else
                f"cut by at most mixing.max_cut_fraction {max_cut_fraction:.0%} (mixing.mode capped), to "
                f"{kept[domain_label]:,} tokens; domain token share {planned:.3f} instead of {domain_fraction}")
        return (f"mixing: reaching domain_token_fraction {domain_fraction} needs leaving out {share_cut:.1%} of the "
                f"{domain_label} tokens ({totals[domain_label]:,} {domain_label} vs {totals[other]:,} {other}); "
                f"{domain_label} {what}. "
                f"More {other} text, another domain_token_fraction, or mixing.mode/max_cut_fraction change this")
    return None


def last_kept_bin(bin_tokens: dict[int, int], budget: int, at_least: bool = False) -> int:
    """The bin up to which (in bin order) the running token total is closest to ``budget``; -1 keeps none.
    ``at_least``: the closest total that keeps at least ``budget`` (a capped cut never leaves out more)."""
    best_bin, best_gap, running = -1, budget, 0
    for b in sorted(bin_tokens):
        running += bin_tokens[b]
        if at_least and running >= budget:
            return b
        gap = abs(running - budget)
        if gap < best_gap:
            best_bin, best_gap = b, gap
    return best_bin


def mix_bin_batch(batch: pa.Table, seed: int, bins: int) -> pa.Table:
    bins_of = np.floor(document_fraction(batch, f"mix-{seed}") * bins).astype(np.int64)
    return batch.append_column("mix_bin", pa.array(bins_of, pa.int64()))


def mark_mixed_batch(batch: pa.Table, cutoffs: dict[str, int]) -> pa.Table:
    """``in_mix``: the document is part of the CPT set (its domain label is not cut, or its bin is within the cut)."""
    keep = np.ones(batch.num_rows, dtype=bool)
    domains = batch["domain"].to_numpy(zero_copy_only=False)
    bins = batch["mix_bin"].to_numpy()
    for domain_label, cutoff in cutoffs.items():
        keep &= (domains != domain_label) | (bins <= cutoff)
    return batch.append_column("in_mix", pa.array(keep))


def selected(batch: pa.Table) -> pa.Table:
    return batch.filter(pc.equal(batch["in_mix"], True))


def left_out(batch: pa.Table) -> pa.Table:
    return batch.filter(pc.equal(batch["in_mix"], False))
