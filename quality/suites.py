"""Which checks each dataset kind runs, with thresholds from the quality config and, where a published
run's manifest says how the data was made, from that (a factory run's redaction rules, a prepare run's
seq_len and mixing target)."""
from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from core import contracts
from quality.checks import Check
from quality.config import ContextConfig, QualityConfig
from quality.datasets import Dataset
from quality.expectations import SampledCheck
from quality.meters import (
    ChosenDiffers, DomainTokenShare, Lengths, MessagesNotBlank, Meter, NotEmpty, PackedRows, Pii, Repeats,
    RolesAlternate, Shares, ValuesIn, char_lengths, conversation_lengths, conversation_text, joined, strings,
)

CONTRACTS = {"documents": contracts.FACTORY_DOCUMENTS, "cpt": contracts.PACKED_CPT, "sft": contracts.SFT,
             "preferences": contracts.PREFERENCE, "reviews": contracts.PREFERENCE}
TRIPLE = ("prompt", "chosen", "rejected")
# what makes two rows the same example (the key of each kind's duplicate_rate); synth drops repeats by it too
SAME_EXAMPLE = {"documents": strings("text"), "sft": conversation_text, "preferences": joined(*TRIPLE),
                "reviews": joined(*TRIPLE)}


@dataclass
class Suite:
    contract: pa.Schema
    meters: list[Meter]  # over every row of the dataset
    side_meters: dict[str, list[Meter]] = field(default_factory=dict)  # over a side table (dataset.extra)
    unmeasurable: list[Check] = field(default_factory=list)  # checks this dataset cannot feed, with why
    sampled: list[SampledCheck] = field(default_factory=list)
    sample_columns: tuple[str, ...] = ()
    context: ContextConfig | None = None


def from_manifest(dataset: Dataset, *keys: str):
    """A value of the config the dataset was made with (``config.packing.seq_len``), or None."""
    value = (dataset.manifest or {}).get("config")
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def build_suite(dataset: Dataset, config: QualityConfig) -> Suite:
    return BUILDERS[dataset.kind](dataset, config)


def documents_suite(dataset: Dataset, config: QualityConfig) -> Suite:
    checks, n = config.documents, config.examples
    redacted = from_manifest(dataset, "redact")  # a factory run is held to what it was told to redact
    pii = [kind for kind in checks.pii if not redacted or redacted.get(kind)]
    return Suite(CONTRACTS["documents"], [
        *(NotEmpty(column, n) for column in ("id", "text", "source", "domain")),
        Repeats("unique_ids", "(source, id) is unique", ("source", "id"), joined("source", "id"), n),
        Repeats("duplicate_rate", "share of rows repeating an earlier row's exact text", ("text",),
                SAME_EXAMPLE["documents"], n, max_rate=checks.max_duplicate_rate),
        Lengths("chars.text", ("text",), char_lengths("text"), checks.text_chars.min, checks.text_chars.max, n),
        Pii(("text",), strings("text"), pii, n),
        ValuesIn("domain", ["domain", "general"], n),
    ])


def cpt_suite(dataset: Dataset, config: QualityConfig) -> Suite:
    n = config.examples
    seq_len = config.cpt.seq_len or from_manifest(dataset, "packing", "seq_len")
    suite = Suite(CONTRACTS["cpt"], [PackedRows(seq_len, n)])
    if seq_len is None:
        suite.unmeasurable.append(Check("rows_full", "rows hold exactly seq_len tokens (no seq_len: set cpt.seq_len "
                                        "or validate a published prepare run)", None))
    # a capped mix plans another share than the target, and says so in its manifest: judge what it planned
    mixing = (dataset.manifest or {}).get("mixing") or {}
    target = mixing.get("planned_domain_token_fraction", from_manifest(dataset, "mixing", "domain_token_fraction"))
    if "documents" in dataset.extra:
        suite.side_meters["documents"] = [DomainTokenShare(target, config.cpt.domain_share_tolerance, n)]
    else:
        suite.unmeasurable.append(Check("domain_token_share", "share of domain tokens (no documents/ table beside "
                                        "the packed rows: not measurable)", None))
    return suite


def context_check(context: ContextConfig) -> SampledCheck:
    how = (f"hash sample of up to {context.sample_rows} rows, tokenised with "
           f"{context.tokenizer or f'an estimate of {context.bytes_per_token:g} UTF-8 bytes per token'}")
    return SampledCheck("within_context", f"the longest text a row renders fits the model's context of "
                        f"{context.max_tokens} tokens", "context_tokens", 0, context.max_tokens, how)


def sft_suite(dataset: Dataset, config: QualityConfig) -> Suite:
    checks, n = config.sft, config.examples
    return Suite(CONTRACTS["sft"], [
        *(NotEmpty(column, n) for column in ("id", "messages", "task_type", "variant")),
        MessagesNotBlank(n),
        Repeats("unique_ids", "`id` is unique", ("id",), strings("id"), n),
        Repeats("duplicate_rate", "share of rows repeating an earlier row's exact conversation", ("messages",),
                SAME_EXAMPLE["sft"], n, max_rate=checks.max_duplicate_rate),
        Lengths("chars.conversation", ("messages",), conversation_lengths, checks.conversation_chars.min,
                checks.conversation_chars.max, n),
        Pii(("messages",), conversation_text, checks.pii, n),
        RolesAlternate(n),
        Shares("task_type", checks.task_type_share.min, checks.task_type_share.max, n, "task_type_mix.png"),
        Shares("variant", checks.variant_share.min, checks.variant_share.max, n, "variant_mix.png"),
    ], sampled=[context_check(checks.context)], sample_columns=("messages",), context=checks.context)


def preference_suite(dataset: Dataset, config: QualityConfig) -> Suite:
    checks, n = getattr(config, dataset.kind), config.examples
    return Suite(CONTRACTS[dataset.kind], [
        *(NotEmpty(column, n) for column in ("id", *TRIPLE)),
        Repeats("unique_ids", "`id` is unique", ("id",), strings("id"), n),
        Repeats("duplicate_rate", "share of rows repeating an earlier row's exact (prompt, chosen, rejected)", TRIPLE,
                SAME_EXAMPLE[dataset.kind], n, max_rate=checks.max_duplicate_rate),
        *(Lengths(f"chars.{column}", (column,), char_lengths(column), checks.text_chars.min, checks.text_chars.max, n)
          for column in TRIPLE),
        Pii(TRIPLE, joined(*TRIPLE), checks.pii, n),
        ChosenDiffers(n),
        ValuesIn("review_status", checks.review_status, n),
    ], sampled=[context_check(checks.context)], sample_columns=TRIPLE, context=checks.context)


BUILDERS = {"documents": documents_suite, "cpt": cpt_suite, "sft": sft_suite, "preferences": preference_suite,
            "reviews": preference_suite}
