"""Token counts of sampled rows: with the model's tokenizer when the config names one, else an estimate
from UTF-8 bytes. The longest text a row renders is what must fit the context."""
from __future__ import annotations

from functools import lru_cache

import pyarrow as pa

from core.adapters import local_path
from quality.config import ContextConfig


@lru_cache(maxsize=2)
def _tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def rendered_texts(sample: pa.Table) -> list[list[str]]:
    """Per row, the texts a model reads in one sequence: a conversation, or prompt + each answer."""
    if "messages" in sample.column_names:
        return [["\n".join(f"{m['role']}: {m['content']}" for m in (conv or []))] for conv in
                sample["messages"].to_pylist()]
    prompts, chosen, rejected = (sample[c].to_pylist() for c in ("prompt", "chosen", "rejected"))
    return [[f"{p or ''}\n{c or ''}", f"{p or ''}\n{r or ''}"] for p, c, r in zip(prompts, chosen, rejected)]


def with_context_tokens(sample: pa.Table, context: ContextConfig) -> pa.Table:
    texts = rendered_texts(sample)
    if context.tokenizer:
        tokenizer = _tokenizer(local_path(context.tokenizer))  # resolved first: a newer run is loaded anew
        counts = [max(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in row) for row in texts]
    else:
        counts = [max(int(len(t.encode("utf-8")) / context.bytes_per_token) for t in row) for row in texts]
    return sample.append_column("context_tokens", pa.array(counts, pa.int64()))
