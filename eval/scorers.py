"""The model work of every suite: a ``ModelWorker`` holds one model copy, loaded once per checkpoint, and
turns a batch of items (a pyarrow table) into a batch of per-item scores for any suite. On Ray it is an
actor (``eval.streaming``); outside Ray the same class runs in the driver."""
from __future__ import annotations

import gc

import pyarrow as pa

from eval.checkpoints import load_model, load_tokenizer, max_positions
from eval.config import CheckpointConfig, DecodingConfig, ModelRuntimeConfig
from eval.loglik import Scored, generate, sequence_logprobs, sliding_windows


def perplexity(model, tokenizer, runtime: ModelRuntimeConfig, batch: pa.Table, context_length: int | None,
               stride: int, add_special_tokens: bool) -> pa.Table:
    """item_id, text -> item_id, nll (nats, summed), n_tokens (scored), n_bytes (UTF-8)."""
    context = context_length or max_positions(model)
    stride = min(stride, context)  # context_length null: the default stride may exceed a small model's window
    texts = batch.column("text").to_pylist()
    encoded = tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"] if texts else []  # (it fails on [])
    windows, owner = [], []
    for item, ids in enumerate(encoded):
        for window in sliding_windows(ids, context, stride):
            windows.append(window)
            owner.append(item)
    nll, n_tokens = [0.0] * len(texts), [0] * len(texts)
    for item, window, logprob in zip(owner, windows, sequence_logprobs(model, windows, runtime.forward_batch_size)):
        nll[item] -= logprob
        n_tokens[item] += window.n_scored
    return pa.table({"item_id": batch.column("item_id"), "nll": nll, "n_tokens": n_tokens,
                     "n_bytes": [len(t.encode("utf-8")) for t in texts]})


def encode_pair(tokenizer, context: str, continuation: str, add_special_tokens: bool) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) as lm-evaluation-harness encodes them for a causal model: the context's
    trailing spaces move to the continuation, the whole text is tokenized, and the continuation is what follows
    the context's own tokens (a SentencePiece tokenizer would give a choice tokenized alone an extra "▁")."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation, add_special_tokens=add_special_tokens)["input_ids"]
    context_ids = tokenizer(context, add_special_tokens=add_special_tokens)["input_ids"]
    return context_ids, whole[len(context_ids):]


def choices(model, tokenizer, runtime: ModelRuntimeConfig, batch: pa.Table, add_special_tokens: bool) -> pa.Table:
    """item_id, context, continuations -> item_id, logprobs and token counts per continuation; an over-long pair
    keeps its last tokens."""
    limit = max_positions(model)
    sequences, owners = [], []
    for item, (context, continuations) in enumerate(zip(batch.column("context").to_pylist(),
                                                        batch.column("continuations").to_pylist())):
        for continuation in continuations:
            context_ids, ids = encode_pair(tokenizer, context, continuation, add_special_tokens)
            whole = (context_ids + ids)[-limit:]
            sequences.append(Scored(whole, min(len(ids), len(whole) - 1)))
            owners.append(item)
    logprobs = sequence_logprobs(model, sequences, runtime.forward_batch_size)
    per_item = [([], []) for _ in range(batch.num_rows)]
    for item, sequence, logprob in zip(owners, sequences, logprobs):
        per_item[item][0].append(logprob)
        per_item[item][1].append(sequence.n_scored)
    return pa.table({"item_id": batch.column("item_id"), "logprobs": [p[0] for p in per_item],
                     "choice_tokens": [p[1] for p in per_item]})


def generation(model, tokenizer, runtime: ModelRuntimeConfig, batch: pa.Table, decoding: dict) -> pa.Table:
    """item_id, prompt -> item_id, completion, new_tokens, with the run's one decoding setting."""
    d = DecodingConfig.model_validate(decoding)
    prompts = batch.column("prompt").to_pylist()
    if d.chat_template and tokenizer.chat_template:
        prompts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                                 add_generation_prompt=True) for p in prompts]
    answers = generate(model, tokenizer, prompts, max_new_tokens=d.max_new_tokens, do_sample=d.do_sample,
                       temperature=d.temperature, top_p=d.top_p, max_prompt_tokens=d.max_prompt_tokens,
                       batch_size=runtime.forward_batch_size)
    return pa.table({"item_id": batch.column("item_id"), "completion": [a[0] for a in answers],
                     "new_tokens": [a[1] for a in answers]})


TASKS = {"perplexity": perplexity, "choices": choices, "generation": generation}


class ModelWorker:
    """One model copy: ``load`` a checkpoint, then ``score`` batches of any suite's task on it."""

    def __init__(self, runtime: dict, seed: int = 0):
        self.runtime = ModelRuntimeConfig.model_validate(runtime)
        self.seed = seed
        self.model = self.tokenizer = self.checkpoint = None

    def load(self, checkpoint: dict) -> None:
        import torch

        self.model = self.tokenizer = None  # the previous checkpoint's weights go before the next one's come
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        torch.manual_seed(self.seed)  # sampled decoding, when asked for, repeats
        config = CheckpointConfig.model_validate(checkpoint)
        self.tokenizer = load_tokenizer(config)
        self.model = load_model(config, self.runtime)
        self.checkpoint = checkpoint

    def score(self, task: str, settings: dict, batch: pa.Table, checkpoint: dict | None = None) -> pa.Table:
        """``checkpoint``: the one the batch is for, loaded first if this worker does not hold it (an actor that
        Ray started again after its node died holds none)."""
        if checkpoint is not None and checkpoint != self.checkpoint:
            self.load(checkpoint)
        return TASKS[task](self.model, self.tokenizer, self.runtime, batch, **settings)
