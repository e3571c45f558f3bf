"""The numbers behind the report, checked against independent computations: perplexity against plain
transformers, multiple-choice accuracy on answers made most likely and on a random model, ROUGE/BLEU
against the reference libraries, and the judge's two-order verdicts; where the model work runs."""
from __future__ import annotations

import math

import pyarrow as pa
import pytest
import torch
import yaml
from scipy.stats import binom
from transformers import AutoConfig

from core import progress
from eval.config import EvalRayConfig, PerplexityConfig
from eval.items import choice_items
from eval.loglik import sliding_windows
from eval.suites import multiple_choice, perplexity
from eval.suites.generation import text_metrics
from eval.suites.judge import combine, parse_winner, tally
from eval.config import ChoiceSetConfig
from eval_fixtures import (GENERAL_TEXT, MC_PROMPT, MMLU_SAMPLE, models, preset_section, question_rows,
                           score, write_table)
from train_fixtures import DOCUMENTS


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return models(tmp_path_factory.mktemp("eval-models"))


def score_perplexity(model_dir, texts, context=None, stride=512) -> pa.Table:
    items = pa.table({"item_id": [f"d{i}" for i in range(len(texts))], "text": texts})
    return score(model_dir, "perplexity", dict(context_length=context, stride=stride, add_special_tokens=True), items)


def transformers_nll(model_dir, text: str) -> tuple[float, int]:
    """Summed NLL and scored tokens of one document, with the model's own loss (no window)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(model_dir)
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.no_grad():
        loss = model(ids, labels=ids).loss.item()
    return loss * (ids.shape[1] - 1), ids.shape[1] - 1


def test_perplexity_equals_exp_mean_token_nll_of_plain_transformers(tiny):
    texts = DOCUMENTS + GENERAL_TEXT  # different lengths: the batch is padded
    ours = perplexity.summarise(score_perplexity(tiny["trained"], texts))
    nll, tokens = zip(*(transformers_nll(tiny["trained"], t) for t in texts))
    assert ours["tokens"] == sum(tokens)
    assert ours["perplexity"] == pytest.approx(math.exp(sum(nll) / sum(tokens)), rel=1e-4)
    per_doc = sorted(math.exp(n / t) for n, t in zip(nll, tokens))
    assert ours["document_perplexity"]["median"] == pytest.approx((per_doc[5] + per_doc[6]) / 2 if len(per_doc) % 2 == 0
                                                                  else per_doc[len(per_doc) // 2], rel=1e-4)


def guide_nll(model_dir, text: str, context: int, stride: int) -> tuple[float, int, int]:
    """(summed NLL, scored tokens, document tokens) by the loop of the transformers perplexity guide."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(model_dir)
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    total, counted, previous_end = 0.0, 0, 0
    for begin in range(0, ids.shape[1], stride):
        end = min(begin + context, ids.shape[1])
        target = ids[:, begin:end].clone()
        target[:, :-(end - previous_end)] = -100
        with torch.no_grad():
            loss = model(ids[:, begin:end], labels=target).loss.item()
        valid = int((target[:, 1:] != -100).sum())  # the model shifts labels: a window's first token is never scored
        total, counted, previous_end = total + loss * valid, counted + valid, end
        if end == ids.shape[1]:
            break
    return total, counted, ids.shape[1]


@pytest.mark.parametrize("context, stride", [(32, 12), (32, 32)])
def test_sliding_window_matches_the_transformers_guide(tiny, context, stride):
    """A document longer than the context: each token scored once, with stride-overlapping context; with
    stride == context (non-overlapping windows) each window's first token has no context and is not scored."""
    text = " ".join(DOCUMENTS)
    total, counted, length = guide_nll(tiny["trained"], text, context, stride)
    assert length > 3 * context
    ours = score_perplexity(tiny["trained"], [text], context=context, stride=stride)
    assert ours.column("n_tokens")[0].as_py() == counted == length - (1 if stride < context else -(-length // context))
    assert ours.column("nll")[0].as_py() == pytest.approx(total, rel=1e-4)


def test_the_shipped_window_defaults_score_a_model_with_few_positions(tiny):
    """context_length null (the model's 256 positions) and stride 512: non-overlapping windows of 256."""
    defaults = preset_section(PerplexityConfig, "perplexity")
    text = " ".join(DOCUMENTS * 4)
    positions = AutoConfig.from_pretrained(tiny["base"]).max_position_embeddings
    assert defaults.context_length is None and defaults.stride >= positions
    total, counted, length = guide_nll(tiny["base"], text, positions, positions)
    assert length > 2 * positions
    ours = score_perplexity(tiny["base"], [text], context=defaults.context_length, stride=defaults.stride)
    assert ours.column("n_tokens")[0].as_py() == counted
    assert ours.column("nll")[0].as_py() == pytest.approx(total, rel=1e-4)


def test_every_token_is_scored_once_whatever_the_stride():
    for length in (1, 2, 31, 32, 33, 64, 65, 100):
        for stride in (1, 7, 31, 32):
            windows = sliding_windows(list(range(length)), 32, stride)  # token i is the number i
            scored = [t for w in windows for t in w.ids[len(w.ids) - w.n_scored:]]
            assert all(0 < w.n_scored < len(w.ids) <= 32 for w in windows)  # each has a token before it
            if stride < 32:
                assert scored == list(range(1, length))
            else:  # non-overlapping windows: each one's first token has nothing before it
                assert scored == [t for t in range(length) if t % 32]
    with pytest.raises(ValueError, match="stride"):
        sliding_windows(list(range(10)), 4, 5)


def test_a_model_trained_on_the_eval_text_has_lower_perplexity(tiny):
    trained = perplexity.summarise(score_perplexity(tiny["trained"], DOCUMENTS))
    untrained = perplexity.summarise(score_perplexity(tiny["base"], DOCUMENTS))
    assert trained["perplexity"] < untrained["perplexity"] / 5
    assert trained["bits_per_byte"] < untrained["bits_per_byte"]


def choice_summary(model_dir, items: pa.Table) -> dict:
    inputs = multiple_choice.choice_inputs(items, MC_PROMPT, " {choice}")
    scored = score(model_dir, "choices", dict(add_special_tokens=True), inputs)
    return multiple_choice.summarise(items, scored, 0.95)


def test_choice_accuracy_is_100_percent_when_the_answer_was_made_most_likely(tiny, tmp_path):
    items = choice_items("domain", ChoiceSetConfig(path=str(write_table(tmp_path / "q.parquet", question_rows())),
                                                   id_column="id"), 100)
    summary = choice_summary(tiny["trained"], items)
    assert summary["acc"]["accuracy"] == 1.0 and summary["acc_norm"]["accuracy"] == 1.0
    assert summary["acc"]["n"] == len(question_rows())
    assert summary["subjects"]["reactor_operations"]["acc"]["accuracy"] == 1.0
    assert 0.5 < summary["acc"]["low"] < 1.0 == summary["acc"]["high"]  # Wilson: an interval even at 100%


def test_choice_accuracy_of_a_random_model_is_within_chance_bounds(tiny):
    items = choice_items("cs", ChoiceSetConfig(path=str(MMLU_SAMPLE), id_column="id"), 1000)
    summary = choice_summary(tiny["base"], items)
    n = summary["acc"]["n"]
    assert n == 40
    low, high = binom.ppf(0.0005, n, 0.25) / n, binom.ppf(0.9995, n, 0.25) / n
    for metric in ("acc", "acc_norm"):
        assert low <= summary[metric]["accuracy"] <= high, (metric, summary[metric])
    assert set(summary["subjects"]) == {"college_computer_science", "computer_security",
                                        "high_school_computer_science", "machine_learning"}
    assert sum(s["acc"]["n"] for s in summary["subjects"].values()) == n


def test_rouge_and_bleu_equal_the_reference_libraries():
    import sacrebleu
    from rouge_score import rouge_scorer

    predictions = ["the cat sat on the mat", "a quick brown fox jumps over the dog", "nothing in common here"]
    references = ["the cat was sitting on the mat", "the quick brown fox jumped over the lazy dog", "zebra"]
    ours = text_metrics(predictions, references)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    for kind in ("rouge1", "rouge2", "rougeL"):
        expected = sum(100 * scorer.score(r, p)[kind].fmeasure for p, r in zip(predictions, references)) / 3
        assert ours[kind]["value"] == pytest.approx(expected)
        assert ours[kind]["low"] <= ours[kind]["value"] <= ours[kind]["high"]
    assert ours["bleu4"]["value"] == pytest.approx(sacrebleu.corpus_bleu(predictions, [references]).score)
    same = text_metrics(references, references)
    assert same["rouge1"]["value"] == pytest.approx(100) and same["bleu4"]["value"] == pytest.approx(100)
    assert text_metrics(["x"], ["y"])["rougeL"]["value"] == 0


def test_judge_verdicts_count_both_orders():
    assert parse_winner('{"winner": "1", "reason": "r"}') == "1"
    assert parse_winner('Sure! {"winner": "tie", "reason": "same"} hope that helps') == "tie"
    assert parse_winner("winner: 2") == "2" and parse_winner("I cannot decide") is None
    # (a, b) judged as (1, 2), then (b, a) judged as (1, 2)
    assert combine("1", "2") == ("win", False)      # a first both times
    assert combine("2", "1") == ("loss", False)
    assert combine("tie", "tie") == ("tie", False)
    assert combine("1", "1") == ("tie", True)       # always the first position: a position bias
    assert combine("1", "tie") == ("tie", True)
    assert combine(None, "1") == (None, False)
    result = tally([("win", False), ("win", False), ("loss", False), ("tie", True), (None, False)], 0.95)
    assert (result["wins"], result["ties"], result["losses"], result["n"]) == (2, 1, 1, 4)
    assert result["inconsistent"] == 1 and result["unreadable"] == 1
    assert result["win_rate"]["value"] == pytest.approx((2 + 0.5) / 4)
    assert result["win_rate"]["low"] < 0.625 < result["win_rate"]["high"]


def test_a_worker_holding_no_model_loads_the_checkpoint_its_batch_names(tiny):
    """A model actor that Ray started again after its node died holds no model: the batch Ray sends it again
    names its checkpoint, and is scored as by a worker that loaded it; a worker holding another one switches."""
    from eval.config import CheckpointConfig, ModelRuntimeConfig
    from eval.scorers import ModelWorker

    runtime = ModelRuntimeConfig(device="cpu", dtype="fp32", forward_batch_size=3).model_dump()
    items = pa.table({"item_id": [f"d{i}" for i in range(len(DOCUMENTS))], "text": DOCUMENTS})
    settings = dict(context_length=None, stride=512, add_special_tokens=True)
    base, lora = (CheckpointConfig(name=name, path=str(tiny[name])).model_dump() for name in ("base", "lora"))
    loaded = ModelWorker(runtime)
    loaded.load(lora)
    expected = loaded.score("perplexity", settings, items)
    restarted = ModelWorker(runtime)
    assert restarted.score("perplexity", settings, items, lora).equals(expected)
    other = restarted.score("perplexity", settings, items, base)
    assert not other.equals(expected)  # the two checkpoints score differently
    loaded.load(base)
    assert other.equals(loaded.score("perplexity", settings, items))


def test_a_local_ray_too_small_for_the_model_actors_is_refused(monkeypatch):
    from core.errors import ConfigError
    from eval.streaming import check_actors_fit

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    two_cpus = dict(enabled=True, batch_size=4, num_gpus_per_actor=0, stall_timeout_s=60, num_cpus=2,
                    in_process_max_items=0)
    check_actors_fit(EvalRayConfig(concurrency=2, num_cpus_per_actor=1, **two_cpus))  # every CPU: fine
    with pytest.raises(ConfigError, match="do not fit this local Ray's 2 CPU"):
        check_actors_fit(EvalRayConfig(concurrency=3, num_cpus_per_actor=1, **two_cpus))
    with pytest.raises(ConfigError, match="0 GPU"):
        check_actors_fit(EvalRayConfig(concurrency=1, num_cpus_per_actor=0.5,
                                       **{**two_cpus, "num_gpus_per_actor": 1}))
    check_actors_fit(EvalRayConfig(concurrency=4, num_cpus_per_actor=1, **{**two_cpus, "address": "ray://x:10001"}))


def test_ray_auto_scores_small_work_without_a_gpu_in_this_process_and_says_so(tmp_path, monkeypatch):
    import eval.placement
    from eval.config import load_eval_config

    def config(**ray):
        path = tmp_path / "eval.yaml"
        path.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "out"), "ray": ray,
                                        "checkpoints": [{"name": n, "path": n} for n in ("base", "cpt", "sft")]}))
        return load_eval_config(path)

    sets = {("multiple_choice", "cs"): pa.table({"item_id": [str(i) for i in range(40)]}),
            ("perplexity", "domain"): pa.table({"item_id": [str(i) for i in range(18)]})}
    said = []
    with progress.lines_to(said.append):
        monkeypatch.setattr(eval.placement, "gpu_visible", lambda: False)
        assert config().ray.enabled == "auto"
        assert eval.placement.placed(config(), sets).ray.enabled is False
        assert "this process" in said[-1] and "174 items x checkpoints" in said[-1]
        assert eval.placement.placed(config(in_process_max_items=100), sets).ray.enabled is True
        assert "174 items x checkpoints > ray.in_process_max_items (100)" in said[-1]
        assert eval.placement.placed(config(num_gpus_per_actor=1), sets).ray.enabled is True
        assert eval.placement.placed(config(enabled=False, in_process_max_items=0), sets).ray.enabled is False
        monkeypatch.setattr(eval.placement, "gpu_visible", lambda: True)
        assert eval.placement.placed(config(), sets).ray.enabled is True
        assert "GPU" in said[-1]


def test_acc_norm_divides_by_the_choice_not_the_scored_continuation():
    """lm-eval scores " {choice}" but divides by len(choice): a short and a long choice whose per-character
    order flips when the leading space is counted."""
    choices, logprobs = [["ab", "abcdefgh"]], [[-2.0, -6.5]]
    per_choice = [lp / len(c) for lp, c in zip(logprobs[0], choices[0])]
    per_continuation = [lp / len(" " + c) for lp, c in zip(logprobs[0], choices[0])]
    expected = per_choice.index(max(per_choice))
    assert expected != per_continuation.index(max(per_continuation))  # the case tells the two apart
    raw, norm = multiple_choice.picks(logprobs, choices)
    assert norm == [expected] and raw == [0]


def test_a_choice_is_scored_on_the_tokens_of_the_whole_text(tmp_path):
    """As lm-eval encodes a pair: context + continuation tokenized together, split after the context's tokens. A
    SentencePiece-style tokenizer (a "▁" before every word, the first included) tokenized " yes" alone would
    give an extra "▁" token the model never sees in "Answer: yes"."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from eval.scorers import encode_pair

    tok = Tokenizer(models.BPE(unk_token="<unk>"))  # as Llama's: "▁" prepended, spaces as "▁"
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    tok.train_from_iterator(["Answer: yes no maybe", "the answer is yes"] * 4,
                            trainers.BpeTrainer(vocab_size=60, special_tokens=["<unk>"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")
    assert tokenizer.convert_ids_to_tokens(tokenizer(" yes")["input_ids"]) == ["▁", "▁yes"]
    for context, continuation in (("Answer:", " yes"), ("Answer: ", "maybe")):
        context_ids, ids = encode_pair(tokenizer, context, continuation, add_special_tokens=True)
        assert context_ids + ids == tokenizer(context + continuation)["input_ids"]
        assert tokenizer.convert_ids_to_tokens(ids) == ["▁" + continuation.strip()]
