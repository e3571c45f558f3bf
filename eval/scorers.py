"""The model actors Ray Data streams eval items through: each loads one checkpoint once and turns a
batch of items (a pyarrow table) into a batch of per-item scores. Outside Ray the same classes run
in the driver."""
from __future__ import annotations

import pyarrow as pa

from eval.checkpoints import load_model, load_tokenizer, max_positions
from eval.config import CheckpointConfig, DecodingConfig, ModelRuntimeConfig
from eval.loglik import Scored, generate, sequence_logprobs, sliding_windows


class ModelActor:
    def __init__(self, checkpoint: dict, runtime: dict, seed: int = 0):
        import torch

        torch.manual_seed(seed)  # sampled decoding, when asked for, repeats
        self.checkpoint = CheckpointConfig.model_validate(checkpoint)
        self.runtime = ModelRuntimeConfig.model_validate(runtime)
        self.tokenizer = load_tokenizer(self.checkpoint)
        self.model = load_model(self.checkpoint, self.runtime)


class PerplexityScorer(ModelActor):
    """item_id, text -> item_id, nll (nats, summed), n_tokens (scored), n_bytes (UTF-8)."""

    def __init__(self, checkpoint: dict, runtime: dict, context_length: int | None, stride: int,
                 add_special_tokens: bool, seed: int = 0):
        super().__init__(checkpoint, runtime, seed)
        self.context = context_length or max_positions(self.model)
        self.stride = min(stride, self.context)
        self.add_special_tokens = add_special_tokens

    def __call__(self, batch: pa.Table) -> pa.Table:
        texts = batch.column("text").to_pylist()
        encoded = self.tokenizer(texts, add_special_tokens=self.add_special_tokens)["input_ids"]
        windows, owner = [], []
        for item, ids in enumerate(encoded):
            for window in sliding_windows(ids, self.context, self.stride):
                windows.append(window)
                owner.append(item)
        nll, n_tokens = [0.0] * len(texts), [0] * len(texts)
        for item, window, logprob in zip(owner, windows,
                                         sequence_logprobs(self.model, windows, self.runtime.forward_batch_size)):
            nll[item] -= logprob
            n_tokens[item] += window.n_scored
        return pa.table({"item_id": batch.column("item_id"), "nll": nll, "n_tokens": n_tokens,
                         "n_bytes": [len(t.encode("utf-8")) for t in texts]})


class ChoiceScorer(ModelActor):
    """item_id, context, continuations -> item_id, logprobs and token counts per continuation.

    Context and continuation are tokenized apart and joined (as lm-evaluation-harness does), so a
    choice's tokens do not depend on how the prompt ends; an over-long pair keeps its last tokens.
    """

    def __call__(self, batch: pa.Table) -> pa.Table:
        limit = max_positions(self.model)
        sequences, owners = [], []
        for item, (context, continuations) in enumerate(zip(batch.column("context").to_pylist(),
                                                            batch.column("continuations").to_pylist())):
            context_ids = self.tokenizer(context)["input_ids"]
            for continuation in continuations:
                ids = self.tokenizer(continuation, add_special_tokens=False)["input_ids"]
                whole = (context_ids + ids)[-limit:]
                sequences.append(Scored(whole, min(len(ids), len(whole) - 1)))
                owners.append(item)
        logprobs = sequence_logprobs(self.model, sequences, self.runtime.forward_batch_size)
        per_item = [([], []) for _ in range(batch.num_rows)]
        for item, sequence, logprob in zip(owners, sequences, logprobs):
            per_item[item][0].append(logprob)
            per_item[item][1].append(sequence.n_scored)
        return pa.table({"item_id": batch.column("item_id"), "logprobs": [p[0] for p in per_item],
                         "choice_tokens": [p[1] for p in per_item]})


class Generator(ModelActor):
    """item_id, prompt -> item_id, completion, new_tokens, with the run's one decoding setting."""

    def __init__(self, checkpoint: dict, runtime: dict, decoding: dict, seed: int = 0):
        super().__init__(checkpoint, runtime, seed)
        self.decoding = DecodingConfig.model_validate(decoding)

    def prompt_text(self, prompt: str) -> str:
        if self.decoding.chat_template and self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                      add_generation_prompt=True)
        return prompt

    def __call__(self, batch: pa.Table) -> pa.Table:
        d = self.decoding
        prompts = [self.prompt_text(p) for p in batch.column("prompt").to_pylist()]
        answers = generate(self.model, self.tokenizer, prompts, max_new_tokens=d.max_new_tokens,
                           do_sample=d.do_sample, temperature=d.temperature, top_p=d.top_p,
                           max_prompt_tokens=d.max_prompt_tokens, batch_size=self.runtime.forward_batch_size)
        return pa.table({"item_id": batch.column("item_id"), "completion": [a[0] for a in answers],
                         "new_tokens": [a[1] for a in answers]})
