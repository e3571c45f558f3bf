"""Judge win rate: an LLM judge (synth's client: same cache, retries and fault handling) compares two
checkpoints' answers to the same prompts, in both orders. A verdict counts only when both orders
agree; position-inconsistent pairs count as ties and are reported."""
from __future__ import annotations

import json
import re

import pyarrow as pa

from core.llm.parse_retry import resolve_parsed
from core.llm.requests import ChatRequest, RequestStats
from eval.config import EvalConfig
from eval.stats import mean_interval, wilson_interval
from eval.suites.common import Work, write_items
from eval.suites.generation import answers_work

VERDICT_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["winner", "reason"],
                  "properties": {"winner": {"type": "string", "enum": ["1", "2", "tie"]},
                                 "reason": {"type": "string"}}}
WINNER = re.compile(r'"?winner"?\s*[:=]\s*"?(1|2|tie)\b', re.IGNORECASE)


def parse_winner(text: str | None) -> str | None:
    """"1", "2" or "tie" from the judge's answer (JSON, or JSON inside prose); None when unreadable."""
    if not text:
        return None
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        try:
            winner = str(json.loads(text[start:end + 1]).get("winner", "")).strip().lower()
            if winner in ("1", "2", "tie"):
                return winner
        except (ValueError, AttributeError):
            pass
    match = WINNER.search(text)
    return match.group(1).lower() if match else None


def winner_or_problem(request: ChatRequest, text: str):
    """For the parse retries: an answer without a readable winner is asked again."""
    winner = parse_winner(text)
    return (winner, None) if winner else (None, ("malformed_json", "no winner in the judge's answer"))


def combine(first_order: str | None, second_order: str | None) -> tuple[str | None, bool]:
    """(verdict for a: "win" | "tie" | "loss" | None when unreadable, position-inconsistent?).

    ``first_order`` judged (a, b) as answers (1, 2); ``second_order`` judged (b, a)."""
    if first_order is None or second_order is None:
        return None, False
    as_a = {"1": "win", "2": "loss", "tie": "tie"}[first_order]
    swapped = {"1": "loss", "2": "win", "tie": "tie"}[second_order]
    if as_a == swapped:
        return as_a, False
    return "tie", True


def tally(verdicts: list[tuple[str | None, bool]], confidence: float) -> dict:
    counted = [v for v, _ in verdicts if v is not None]
    n = len(counted)
    counts = {kind: counted.count(kind) for kind in ("win", "tie", "loss")}
    score = [{"win": 1.0, "tie": 0.5, "loss": 0.0}[v] for v in counted]
    rate, low, high = mean_interval(score, confidence)
    return {
        "wins": counts["win"], "ties": counts["tie"], "losses": counts["loss"],
        **{f"{kind}_share": {"value": counts[kind] / n if n else float("nan"),
                             "low": wilson_interval(counts[kind], n, confidence)[0],
                             "high": wilson_interval(counts[kind], n, confidence)[1]} for kind in ("win", "tie", "loss")},
        "win_rate": {"value": rate, "low": low, "high": high},  # wins + half the ties
        "inconsistent": sum(1 for _, inconsistent in verdicts if inconsistent),
        "unreadable": len(verdicts) - n,
        "n": n,
    }


def verdict_request(config: EvalConfig, item_id: str, order: str, question: str, answer_1: str,
                    answer_2: str) -> ChatRequest:
    judge = config.judge
    messages = [{"role": "system", "content": judge.system},
                {"role": "user", "content": judge.template.format(question=question, answer_1=answer_1,
                                                                  answer_2=answer_2)}]
    return ChatRequest(f"{item_id}/{order}", "judge", judge.endpoint.model, messages, judge.sampling.model_dump(),
                       judge.prompt_version, "verdict", VERDICT_SCHEMA)


def work(config: EvalConfig, items: pa.Table) -> list[Work]:
    """The answers to judge: each paired checkpoint's, to the judge's prompts."""
    names = tuple(c.name for c in config.checkpoints if any(c.name in pair for pair in config.judge.pairs))
    return [answers_work(config, "judge", "answers", items, names)]


def run(config: EvalConfig, items: pa.Table, scored: dict, output) -> tuple[dict, dict]:
    """(results per pair, request stats) for every pair in ``judge.pairs``."""
    names = sorted({name for pair in config.judge.pairs for name in pair})
    answers = {name: scored[("judge", "answers", name)].column("completion").to_pylist() for name in names}
    questions, item_ids = items.column("prompt").to_pylist(), items.column("item_id").to_pylist()
    requests = []
    for a, b in config.judge.pairs:
        for i, (item_id, question) in enumerate(zip(item_ids, questions)):
            requests.append(verdict_request(config, f"{a}_vs_{b}/{item_id}", "ab", question, answers[a][i], answers[b][i]))
            requests.append(verdict_request(config, f"{a}_vs_{b}/{item_id}", "ba", question, answers[b][i], answers[a][i]))
    stats = RequestStats()
    verdict_answers = resolve_parsed(requests, config.judge_settings(), winner_or_problem,
                                     config.judge.max_parse_retries, stats, "judge")
    outcome, per_pair = {}, len(item_ids) * 2
    for p, (a, b) in enumerate(config.judge.pairs):
        pair = verdict_answers[p * per_pair:(p + 1) * per_pair]
        first, second = [x.value for x in pair[0::2]], [x.value for x in pair[1::2]]
        verdicts = [combine(x, y) for x, y in zip(first, second)]
        outcome[f"{a}_vs_{b}"] = {"a": a, "b": b, **tally(verdicts, config.confidence)}
        write_items(output, "judge", f"{a}_vs_{b}", "verdicts", pa.table({
            "item_id": item_ids, "prompt": questions, "answer_a": answers[a], "answer_b": answers[b],
            "judged_ab": first, "judged_ba": second, "verdict": [v for v, _ in verdicts],
            "inconsistent": [i for _, i in verdicts],
            "failure": [x.result.reason or y.result.reason or (x.problem or y.problem or (None,))[0]
                        for x, y in zip(pair[0::2], pair[1::2])],
        }))
    return outcome, stats.to_dict()
