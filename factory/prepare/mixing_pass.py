"""The mixing pass over the scored documents: token totals per domain label (domain, general), the budget
the over-represented one keeps, the mix bins it cuts, and which documents are chosen and which left out (the
rules are in mixing.py)."""
from __future__ import annotations

from dataclasses import dataclass

from factory.prepare.config import PrepareConfig
from factory.prepare.mixing import capped_budgets, cut_warning, last_kept_bin, left_out, mark_mixed_batch, selected, \
    token_budgets
from factory.prepare.selection import of_domain_label
from factory.prepare.totals import totals_by


@dataclass
class Mixed:
    """What mixing decided, and the datasets it leaves for the later phases."""
    totals: dict  # tokens per domain label before mixing
    budgets: dict  # tokens to keep, per domain label that is cut
    cutoffs: dict  # the last kept mix bin, per domain label that is cut
    warning: str | None  # set when the cut is large
    marked: object  # every document, marked chosen or left out (materialised)
    chosen: object  # the chosen documents (materialised)
    n_chosen: int
    n_left_out: int

    def decided(self) -> dict:
        """What mixing decided, without its datasets (JSON: kept with a resumable run's phases)."""
        return {"totals": self.totals, "budgets": self.budgets, "cutoffs": self.cutoffs, "warning": self.warning,
                "n_chosen": self.n_chosen, "n_left_out": self.n_left_out}

    @classmethod
    def remade(cls, decided: dict, scored, batch: dict) -> "Mixed":
        """``decided`` applied to ``scored`` again (lazy): the later phases read the documents it marked."""
        marked = scored.map_batches(mark_mixed_batch, fn_kwargs={"cutoffs": decided["cutoffs"]}, **batch)
        return cls(**decided, marked=marked, chosen=marked.map_batches(selected, batch_format="pyarrow"))


def mixing_cutoffs(ds, config: PrepareConfig) -> tuple[dict, dict, dict, str | None]:
    """(tokens per domain label, budgets, the last kept bin per cut label, a warning when the cut is large)."""
    mixing = config.mixing
    totals = totals_by(ds, "domain")
    needed = token_budgets(totals, mixing.domain_token_fraction)
    budgets = needed if mixing.mode == "exact_ratio" else capped_budgets(totals, needed, mixing.max_cut_fraction)
    warning = cut_warning(totals, needed, budgets, mixing.max_cut_fraction, mixing.domain_token_fraction)
    cutoffs = {}
    for domain_label, budget in budgets.items():
        if budget >= totals[domain_label]:
            continue  # nothing to cut (a cap of 0)
        rows = ds.map_batches(of_domain_label, fn_kwargs={"domain_label": domain_label}, batch_format="pyarrow")
        bins = totals_by(rows, "mix_bin")
        # when the cap binds, keep at least the budget (a capped cut never leaves out more)
        cutoffs[domain_label] = last_kept_bin(bins, budget, at_least=budget > needed[domain_label])
    return totals, budgets, cutoffs, warning


def mix_documents(scored, config: PrepareConfig, batch: dict) -> Mixed:
    """Marks every scored document chosen or left out by the token budgets; ``batch``: map_batches' format and size."""
    totals, budgets, cutoffs, warning = mixing_cutoffs(scored, config)
    marked = scored.map_batches(mark_mixed_batch, fn_kwargs={"cutoffs": cutoffs}, **batch).materialize()
    chosen = marked.map_batches(selected, batch_format="pyarrow").materialize()
    return Mixed(totals, budgets, cutoffs, warning, marked, chosen, n_chosen=chosen.count(),
                 n_left_out=marked.map_batches(left_out, batch_format="pyarrow").count())
