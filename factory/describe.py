"""What a factory run and a prepare run will do, in words, for ``--print-config`` (nothing is read or run)."""
from __future__ import annotations

from factory.config import FactoryConfig
from factory.prepare.config import PrepareConfig


def factory_plan(config: FactoryConfig) -> list[str]:
    from factory.pipeline import PIPELINE  # the stage classes import datatrove: only when asked

    fuzzy = config.dedup.fuzzy
    filters = [f"{name} ({spec.datatrove})" for name, spec in config.filters.items() if spec.enabled]
    off = [name for name, spec in config.filters.items() if not spec.enabled]
    return [
        "sources: " + "; ".join(f"{s.name} = {s.path} ({s.domain}, text column {s.text_column})" for s in config.sources),
        "stages, in order: " + " -> ".join(stage.name for stage in PIPELINE),
        f"filters (stage quality), in order: {', '.join(filters) or 'none'}" + (f"; off: {', '.join(off)}" if off else ""),
        f"exact dedup: {'on' if config.dedup.exact.enabled else 'off'}; near dedup: " +
        (f"MinHash {fuzzy.num_bands} bands x {fuzzy.rows_per_band} rows of {fuzzy.ngram_size}-word shingles, "
         f"Jaccard >= {fuzzy.threshold}" if fuzzy.enabled else "off"),
        _gate_line(config.quality, "documents"),
        f"output: {config.output_dir} (documents/, rejects/, manifest.json, published atomically)",
    ]


def prepare_plan(config: PrepareConfig) -> list[str]:
    mixing, grouping = config.mixing, config.grouping
    tokenizer = config.tokenizer.path or f"a byte-level BPE of {config.tokenizer.train_vocab_size} tokens, trained here"
    return [
        f"input: the factory run in {config.input_dir}",
        f"tokenizer: {tokenizer}",
        "mixing: " + (f"{mixing.domain_token_fraction:.0%} domain tokens, {mixing.mode}, at most "
                      f"{mixing.max_cut_fraction:.0%} of the domain or the general tokens left out" if mixing.domain_token_fraction else "keep all"),
        f"curriculum: {config.curriculum.num_buckets} bucket(s) by " +
        " ".join(f"{weight:+g} x {column}" for column, weight in config.curriculum.score.items()),
        "grouping: " + (f"{grouping.embedder} neighbours ({grouping.neighbours})" if grouping.enabled else "off"),
        f"packing: rows of {config.packing.seq_len} tokens; validation: {config.validation.fraction:.0%} of documents",
        _gate_line(config.quality, "cpt"),
        f"output: {config.output_dir} (train/, validation/, documents/, mixed_out/, tokenizer/, manifest.json)",
    ]


def _gate_line(gate, kind: str) -> str:
    if not gate.gate:
        return "quality gate: off (published without validating)"
    return f"quality gate: `quality validate {kind}` before publishing, thresholds from {gate.config or 'the defaults'}"
