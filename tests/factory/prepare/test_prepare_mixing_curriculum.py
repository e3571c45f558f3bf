"""Mixing hits the token ratio; curriculum buckets are equal-count and ordered; the split is by document."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from factory.prepare.curriculum import bucket_edges, bucket_of
from factory.prepare.mixing import capped_budgets, cut_warning, last_kept_bin, mark_mixed_batch, mix_bin_batch, \
    planned_share, token_budgets
from factory.prepare.split import split_batch


def corpus_table(n_domain: int, n_general: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    n = n_domain + n_general
    return pa.table({
        "id": [f"doc{i}" for i in range(n)],
        "source": ["papers"] * n_domain + ["news"] * n_general,
        "domain": ["domain"] * n_domain + ["general"] * n_general,
        "n_tokens": rng.lognormal(5, 0.8, n).astype(np.int64) + 1,
    })


def domain_share(table: pa.Table) -> float:
    keep = table["in_mix"].to_numpy(zero_copy_only=False)
    tokens, domains = table["n_tokens"].to_numpy()[keep], table["domain"].to_numpy(zero_copy_only=False)[keep]
    return tokens[domains == "domain"].sum() / tokens.sum()


def tokens_per_domain_label(table: pa.Table) -> dict[str, int]:
    return {d: int(table.filter(pc.equal(table["domain"], d))["n_tokens"].to_numpy().sum()) for d in ("domain", "general")}


def mixed(table: pa.Table, fraction: float, bins: int = 65536, max_cut: float | None = None) -> pa.Table:
    table = mix_bin_batch(table, seed=0, bins=bins)
    totals = tokens_per_domain_label(table)
    needed = budgets = token_budgets(totals, fraction)
    if max_cut is not None:
        budgets = capped_budgets(totals, needed, max_cut)
    cutoffs = {}
    for domain_label, budget in budgets.items():
        rows = table.filter(pc.equal(table["domain"], domain_label))
        per_bin: dict[int, int] = {}
        for b, n in zip(rows["mix_bin"].to_pylist(), rows["n_tokens"].to_pylist()):
            per_bin[b] = per_bin.get(b, 0) + n
        cutoffs[domain_label] = last_kept_bin(per_bin, budget, at_least=budget > needed[domain_label])
    return mark_mixed_batch(table, cutoffs)


@pytest.mark.parametrize("n_domain,n_general,fraction", [(900, 300, 0.8), (300, 900, 0.8), (500, 500, 0.7), (2000, 100, 0.8)])
def test_mixing_reaches_the_token_ratio_within_two_percent(n_domain, n_general, fraction):
    table = mixed(corpus_table(n_domain, n_general), fraction)
    assert abs(domain_share(table) - fraction) < 0.02
    # only the over-represented domain label is cut
    kept = table.filter(table["in_mix"])
    assert set(kept["domain"].to_pylist()) == {"domain", "general"}
    cut_domain_labels = {d for d, k in zip(table["domain"].to_pylist(), table["in_mix"].to_pylist()) if not k}
    assert len(cut_domain_labels) == 1


def test_scarce_general_text_keeps_the_domain_corpus_and_says_what_share_it_reached():
    """2,000 domain documents and 20 general ones: a 0.8 share would leave out most of the domain corpus. The
    capped default leaves out at most max_cut_fraction of it and warns with the numbers; exact_ratio cuts, warned."""
    table = corpus_table(2000, 20, seed=1)
    totals = tokens_per_domain_label(table)
    needed = token_budgets(totals, 0.8)
    capped = mixed(table, 0.8, max_cut=0.1)
    kept = tokens_per_domain_label(capped.filter(capped["in_mix"]))
    assert 0.9 <= kept["domain"] / totals["domain"] <= 0.92  # never more than the 10% cap, not a 97% cut
    assert last_kept_bin({0: 5, 1: 5, 2: 5}, 7) == 0 and last_kept_bin({0: 5, 1: 5, 2: 5}, 7, at_least=True) == 1
    assert kept["general"] == totals["general"]
    planned = planned_share(totals, capped_budgets(totals, needed, 0.1))
    assert abs(domain_share(capped) - planned) < 0.005 and planned > 0.95  # the target is missed, as planned
    warning = cut_warning(totals, needed, capped_budgets(totals, needed, 0.1), 0.1, 0.8)
    assert "needs leaving out" in warning and f"{totals['domain']:,} domain" in warning
    assert f"domain token share {planned:.3f} instead of 0.8" in warning
    exact = cut_warning(totals, needed, needed, 0.1, 0.8)
    assert "as mixing.mode exact_ratio asks" in exact
    assert abs(domain_share(mixed(table, 0.8)) - 0.8) < 0.02  # exact_ratio still reaches the target
    # a cut within the allowance is silent and exact
    balanced = tokens_per_domain_label(corpus_table(900, 300))
    near = round(balanced["domain"] / sum(balanced.values()) - 0.01, 3)  # a target just below the corpus's share
    small = token_budgets(balanced, near)
    assert capped_budgets(balanced, small, 0.1) == small and cut_warning(balanced, small, small, 0.1, near) is None
    # a cap of 0 keeps everything
    assert planned_share(totals, capped_budgets(totals, needed, 0.0)) == round(totals["domain"] / sum(totals.values()), 6)


def test_mixing_choice_does_not_depend_on_row_order():
    table = corpus_table(800, 300, seed=4)
    forward = mixed(table, 0.8)
    backward = mixed(table.take(pa.array(np.arange(table.num_rows)[::-1])), 0.8)
    keep_f = {i for i, k in zip(forward["id"].to_pylist(), forward["in_mix"].to_pylist()) if k}
    keep_b = {i for i, k in zip(backward["id"].to_pylist(), backward["in_mix"].to_pylist()) if k}
    assert keep_f == keep_b


def test_no_budget_when_a_domain_label_is_missing_or_mixing_is_off():
    assert token_budgets({"domain": 100}, 0.8) == {}
    assert token_budgets({"domain": 100, "general": 50}, None) == {}
    assert token_budgets({"domain": 800, "general": 200}, 0.8) in ({"domain": 800}, {"general": 200})


def test_buckets_are_equal_count_and_monotone_in_the_score():
    scores = np.random.default_rng(0).normal(size=1000)
    edges = bucket_edges(scores, 4)
    buckets = bucket_of(scores, edges)
    assert np.bincount(buckets).tolist() == [250, 250, 250, 250]
    order = np.argsort(scores)
    assert np.all(np.diff(buckets[order]) >= 0)  # a lower score never lands in a later bucket
    assert bucket_edges(scores, 1) == [] and set(bucket_of(scores, []).tolist()) == {0}


def test_validation_split_is_by_document_and_deterministic():
    table = corpus_table(3000, 0)
    first = split_batch(table, fraction=0.1, seed=0)["split"].to_pylist()
    again = split_batch(table.slice(1500).select(table.column_names), 0.1, 0)["split"].to_pylist()
    assert first[1500:] == again  # a document's split depends on the document only
    share = first.count("validation") / len(first)
    assert 0.08 < share < 0.12
