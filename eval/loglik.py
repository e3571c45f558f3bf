"""Log-likelihoods of token sequences under a causal LM: the arithmetic behind perplexity and
multiple choice, batched with right padding (a real token never attends to a pad)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scored:
    """Token ids and how many of the last ones are scored (predicted from everything before them)."""

    ids: list[int]
    n_scored: int

    def __post_init__(self):
        # the first token of a sequence has no logits before it: scoring it would read past the sequence
        if not 0 <= self.n_scored < max(1, len(self.ids)):
            raise ValueError(f"{self.n_scored} scored tokens in a sequence of {len(self.ids)}: at most "
                             f"{max(0, len(self.ids) - 1)} can be")


def sliding_windows(ids: list[int], context: int, stride: int) -> list[Scored]:
    """Windows of at most ``context`` tokens, ``stride`` apart, as in the transformers perplexity guide: each
    window scores the tokens the previous one did not reach, with up to ``context - stride`` tokens of earlier
    context. A token needs at least one token before it in its window, so with ``stride == context``
    (non-overlapping windows) the first token of each window after the first is not scored, as in the guide;
    with ``stride < context`` every token after the document's first is scored exactly once."""
    if stride > context:
        raise ValueError(f"stride {stride} is larger than the context length {context}: tokens would be skipped")
    windows, scored_until = [], 1  # the first token has nothing to be predicted from
    for begin in range(0, len(ids), stride):
        end = min(begin + context, len(ids))
        if end > scored_until:
            n_scored = min(end - scored_until, end - begin - 1)
            if n_scored > 0:
                windows.append(Scored(ids[begin:end], n_scored))
            scored_until = end
        if end == len(ids):
            break
    return windows


def sequence_logprobs(model, sequences: list[Scored], batch_size: int) -> list[float]:
    """Sum of log p(token | earlier tokens) over each sequence's scored tokens, in input order.

    Sequences are batched longest first (little padding); only the scored positions' logits are turned
    into log-probabilities, so memory is the model's logits, not batch x length x vocab of float32 twice.
    """
    import torch

    device = next(model.parameters()).device
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i].ids))
    result = [0.0] * len(sequences)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [i for i in order[start:start + batch_size] if sequences[i].n_scored > 0]
            if not batch:
                continue
            width = len(sequences[batch[0]].ids)
            input_ids = torch.zeros((len(batch), width), dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids = sequences[i].ids
                input_ids[row, :len(ids)] = torch.tensor(ids)
                attention[row, :len(ids)] = 1
            # no padding in this batch: no mask, so attention takes its causal fast path
            mask = None if bool(attention.all()) else attention.to(device)
            logits = model(input_ids=input_ids.to(device), attention_mask=mask).logits
            for row, i in enumerate(batch):
                length, n = len(sequences[i].ids), sequences[i].n_scored
                # logits at position t predict token t + 1
                logprobs = torch.log_softmax(logits[row, length - 1 - n:length - 1].float(), dim=-1)
                targets = input_ids[row, length - n:length].to(device)
                result[i] = float(logprobs.gather(-1, targets.unsqueeze(-1)).sum())
    return result


def generate(model, tokenizer, prompts: list[str], *, max_new_tokens: int, do_sample: bool, temperature: float,
             top_p: float, max_prompt_tokens: int, batch_size: int) -> list[tuple[str, int]]:
    """(completion, new tokens) per prompt; batched with left padding so every prompt ends where
    generation starts; a prompt over ``max_prompt_tokens`` keeps its last tokens."""
    import torch

    device = next(model.parameters()).device
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = "left"
    sampling = dict(do_sample=True, temperature=temperature, top_p=top_p) if do_sample else dict(do_sample=False)
    outputs: list[tuple[str, int]] = []
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            encoded = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True,
                                truncation=True, max_length=max_prompt_tokens).to(device)
            generated = model.generate(**encoded, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                       **sampling)
            new_tokens = generated[:, encoded["input_ids"].shape[1]:]
            for row in new_tokens:
                row = row.tolist()
                if tokenizer.eos_token_id in row:
                    row = row[:row.index(tokenizer.eos_token_id)]
                while row and row[-1] == tokenizer.pad_token_id:
                    row.pop()
                outputs.append((tokenizer.decode(row, skip_special_tokens=True).strip(), len(row)))
    return outputs
