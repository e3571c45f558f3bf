"""What a prepare run records in its manifest, and the lines it ends with (read from that manifest)."""
from __future__ import annotations

from pathlib import Path

from core.publish import MANIFEST
from factory.prepare.config import PrepareConfig
from factory.prepare.mixing import planned_share
from factory.prepare.mixing_pass import Mixed
from factory.prepare.pack_splits import PackedSplits
from factory.prepare.split import TRAIN, VALIDATION


def manifest_sections(config: PrepareConfig, tokenizer_path: str, n_input: int, mixed: Mixed, edges: list,
                      grouping_info: dict, packed: PackedSplits) -> dict:
    """The run's own manifest sections: tokenizer, mixing (planned and achieved), curriculum, grouping,
    splits, outputs."""
    achieved = {domain_label: sum(packed[split].stats.domain_tokens.get(domain_label, 0)
                                  for split in (TRAIN, VALIDATION))
                for domain_label in ("domain", "general")}
    total_tokens = sum(achieved.values())
    similarity = packed.row_neighbour_similarity
    grouping_info["row_neighbour_similarity"] = round(similarity, 4) if similarity is not None else None
    summaries = {split: packed[split].summary() for split in (TRAIN, VALIDATION)}
    return {
        "tokenizer": {"path": tokenizer_path if config.tokenizer.path else "tokenizer",
                      "trained": config.tokenizer.path is None},
        "mixing": {
            "target_domain_token_fraction": config.mixing.domain_token_fraction,
            "mode": config.mixing.mode, "max_cut_fraction": config.mixing.max_cut_fraction,
            "warning": mixed.warning,  # the gate judges the achieved share against the planned one
            "planned_domain_token_fraction":
                planned_share(mixed.totals, mixed.budgets) if config.mixing.domain_token_fraction is not None else None,
            "tokens_before": mixed.totals, "budgets": mixed.budgets, "cut_bins": mixed.cutoffs,
            "tokens_after": achieved,
            "achieved_domain_token_fraction": round(achieved["domain"] / total_tokens, 6) if total_tokens else None,
            "documents_left_out": n_input - mixed.n_chosen,
        },
        "curriculum": {"score": config.curriculum.score, "bucket_edges": edges},
        "grouping": grouping_info,
        "splits": summaries,
        "outputs": {
            TRAIN: {"path": TRAIN, "rows": summaries[TRAIN]["rows"]},
            VALIDATION: {"path": VALIDATION, "rows": summaries[VALIDATION]["rows"]},
            "documents": {"path": "documents", "rows": mixed.n_chosen},
            "mixed_out": {"path": "mixed_out", "rows": n_input - mixed.n_chosen},
        },
    }


def summary_lines(config: PrepareConfig, manifest: dict, output: Path | str, seconds: float) -> list[str]:
    """The run's closing lines: splits and packing, the domain share (its warning was said when mixing found it),
    grouping quality, and where it all went (``output``: the run's own folder)."""
    train, validation = manifest["splits"][TRAIN], manifest["splits"][VALIDATION]
    mixing, grouping = manifest["mixing"], manifest["grouping"]
    lines = [
        f"train: {train['documents']} documents, {train['tokens']} tokens in {train['rows']} rows of "
        f"{config.packing.seq_len} (packing efficiency {train['packing_efficiency']:.3%}); validation: "
        f"{validation['documents']} documents in {validation['rows']} rows",
        f"domain token share {mixing['achieved_domain_token_fraction']} "
        f"(target {config.mixing.domain_token_fraction}); {mixing['documents_left_out']} documents left out by mixing",
    ]
    if grouping.get("enabled"):
        lines.append(f"grouping ({grouping['embedder']}): mean similarity of documents sharing a row "
                     f"{grouping['row_neighbour_similarity']} vs random pairs {grouping['random_pair_similarity']}")
    lines.append(f"wrote {output}/{{train,validation,documents,mixed_out}} and {output}/{MANIFEST} in {seconds} s")
    return lines
