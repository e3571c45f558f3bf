"""The target model's tokenizer: loaded from a local directory, or a small byte-level BPE trained on
the corpus (no hub downloads); documents are tokenised in ``map_batches`` and end with EOS."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa

from core.adapters import local_path
from core.errors import ConfigError


@lru_cache(maxsize=4)
def load_tokenizer(path: str):
    """A fast tokenizer with an EOS token; cached so each Ray worker process loads it once."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(local_path(path), local_files_only=True)  # s3://: this node's copy
    if not tokenizer.is_fast:
        raise ConfigError(f"tokenizer.path: {path} is not a fast (Rust) tokenizer; packing needs one")
    if tokenizer.eos_token_id is None:
        raise ConfigError(f"tokenizer.path: {path} has no eos_token; documents are joined with EOS")
    return tokenizer


def train_tokenizer(texts: list[str], vocab_size: int, eos_token: str, save_to: Path) -> Path:
    """Train a byte-level BPE (lossless on any text) and save it as a transformers tokenizer directory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[eos_token], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,  # its bar is three blank lines in a log; the prepare run reports its own progress
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=eos_token).save_pretrained(str(save_to))
    return save_to


def encode(texts: list[str], tokenizer_path: str) -> list[np.ndarray]:
    """Token ids of each text followed by EOS (the separator packing relies on)."""
    tokenizer = load_tokenizer(tokenizer_path)
    # the Rust tokenizer directly: no max-length warnings, no special tokens added
    encodings = tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
    eos = tokenizer.eos_token_id
    return [np.append(np.asarray(e.ids, dtype=np.int32), np.int32(eos)) for e in encodings]


def tokenize_batch(batch: pa.Table, tokenizer_path: str) -> pa.Table:
    """Adds ``token_ids`` (list<int32>, EOS included) and ``n_tokens`` (its length)."""
    ids = encode(batch["text"].to_pylist(), tokenizer_path)
    batch = batch.append_column("token_ids", pa.array(ids, pa.list_(pa.int32())))
    return batch.append_column("n_tokens", pa.array([len(t) for t in ids], pa.int64()))
