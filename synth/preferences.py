"""Preference triples: several candidate answers per prompt, judged pairwise in both orders.

Stage ``sample`` asks every configured generator (endpoint and temperature) to answer each
prompt. Stage ``judge`` shows the judge each pair twice, A/B then B/A: a pair becomes a
(prompt, chosen, rejected) triple only if both orders pick the same winner. Ties and
inconsistent verdicts are rejects with their reason, never guessed. Of identical triples (two
prompts asked the same question get the same answers) the first is kept, the rest are ``duplicate``
rejects (``synth.repeats``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from core import progress
from core.blank import is_blank
from core.contracts import PREFERENCE
from core.errors import ConfigError
from core.llm.requests import ChatRequest, RequestStats
from core.llm.parse_retry import Parsed, resolve_parsed
from core.llm.scale import resolve
from quality.suites import SAME_EXAMPLE
from synth.config import SynthConfig
from synth.inputs import read_input
from core.llm.json_answers import parse_json_answer
from synth.repeats import FirstOfEach
from synth.results import JobResult, reject
from synth.templates import PromptTemplate, load_template

RESPOND_FIELDS = {"prompt"}
JUDGE_FIELDS = {"prompt", "reference", "response_a", "response_b"}


@dataclass
class PreferencePlan:
    prompts: list[dict]  # id, prompt, reference, source_doc_id
    files: list[Path]
    respond: PromptTemplate
    judge: PromptTemplate
    rejects: list[dict] = field(default_factory=list)


def plan_preferences(config: SynthConfig) -> PreferencePlan:
    prefs, dirs = config.preferences, config.template_dirs()
    respond = load_template(prefs.respond_template, dirs, RESPOND_FIELDS)
    judge = load_template(prefs.judge_template, dirs, JUDGE_FIELDS)
    if judge.response_schema is None:
        raise ConfigError(f"prompt template {judge.name!r} has no response_schema; the judge must answer in JSON")
    inp = prefs.input
    table, files = read_input(inp, "preferences.input", {inp.id_column: "id_column", inp.text_column: "text_column"})
    plan = PreferencePlan([], files, respond, judge)
    has_doc = "source_doc_id" in table.column_names
    for row in table.to_pylist():
        turns = row[inp.text_column] or []
        user = next((m["content"] for m in turns if m["role"] == "user"), None)
        answer = next((m["content"] for m in turns if m["role"] == "assistant"), "")
        if is_blank(user):
            plan.rejects.append(reject(str(row[inp.id_column]), None, "input", "no_user_turn"))
            continue
        plan.prompts.append({"id": str(row[inp.id_column]), "prompt": user, "reference": answer,
                             "source_doc_id": row.get("source_doc_id") if has_doc else None})
    return plan


def candidate_label(config: SynthConfig, index: int) -> tuple[str, float]:
    generator = config.preferences.generators[index]
    return config.endpoints[generator.endpoint].model, generator.temperature


def both_verdicts(answers: dict[str, Parsed], pair_id: str):
    """({"ab": verdict, "ba": verdict}, None) or (None, (reason, detail, raw)) for the first order that failed;
    a verdict is (winner 'A'/'B'/'tie', score_a, score_b, rationale)."""
    parsed = {}
    for order in ("ab", "ba"):
        answer = answers[f"{pair_id}/{order}"]
        if not answer.result.ok:
            return None, (answer.result.reason, f"{order}: {answer.result.detail}", answer.raw())
        if answer.problem:
            return None, (f"judge_{answer.problem[0]}", f"{order}: {answer.problem[1]}", answer.raw())
        value = answer.value
        parsed[order] = (value["winner"], float(value["score_a"]), float(value["score_b"]), value["rationale"].strip())
    return parsed, None


def run_preferences(plan: PreferencePlan, config: SynthConfig) -> JobResult:
    prefs = config.preferences
    judge_model = config.endpoints[prefs.judge].model
    rows, rejects = [], list(plan.rejects)
    stats = {"sample": RequestStats(), "judge": RequestStats()}

    sample_requests = [
        ChatRequest.from_template(f"{p['id']}/c{k}", g.endpoint, config.endpoints[g.endpoint].model, plan.respond,
                                  {"temperature": g.temperature, "max_tokens": prefs.max_tokens}, prompt=p["prompt"])
        for p in plan.prompts for k, g in enumerate(prefs.generators)
    ]
    progress.say(f"sample: {len(plan.prompts)} prompts x {len(prefs.generators)} generators = "
                 f"{len(sample_requests)} requests")
    candidates: dict[str, dict[int, str]] = {p["id"]: {} for p in plan.prompts}
    by_prompt = {p["id"]: p for p in plan.prompts}
    for request, result in zip(sample_requests, resolve(sample_requests, config.llm_settings(), "sample")):
        stats["sample"].add(result)
        prompt_id, k = request.item_id.rsplit("/c", 1)
        source = by_prompt[prompt_id]["source_doc_id"]
        if not result.ok:
            rejects.append(reject(request.item_id, source, "sample", result.reason, result.detail))
        elif is_blank(result.text):
            rejects.append(reject(request.item_id, source, "sample", "empty_response", raw=result.text))
        else:
            candidates[prompt_id][int(k)] = result.text.strip()

    judge_requests, pairs = [], []
    for prompt_id, answers in candidates.items():
        prompt = by_prompt[prompt_id]
        if len(answers) < 2:
            rejects.append(reject(prompt_id, prompt["source_doc_id"], "judge", "too_few_candidates",
                                  f"{len(answers)} usable response(s)"))
            continue
        for i, j in list(combinations(sorted(answers), 2))[: prefs.max_pairs_per_prompt]:
            pair_id = f"{prompt_id}/{i}-{j}"
            if answers[i] == answers[j]:
                rejects.append(reject(pair_id, prompt["source_doc_id"], "judge", "identical_responses"))
                continue
            pairs.append((pair_id, prompt_id, i, j))
            for order, (a, b) in (("ab", (i, j)), ("ba", (j, i))):
                judge_requests.append(ChatRequest.from_template(
                    f"{pair_id}/{order}", prefs.judge, judge_model, plan.judge, prefs.judge_sampling.model_dump(),
                    prompt=prompt["prompt"], reference=prompt["reference"], response_a=answers[a], response_b=answers[b]))
    progress.say(f"judge: {len(pairs)} pairs, both orders = {len(judge_requests)} requests")
    answers = resolve_parsed(judge_requests, config.llm_settings(),
                             lambda request, text: parse_json_answer(text, plan.judge.response_schema),
                             config.max_parse_retries, stats["judge"], "judge")
    verdicts = {request.item_id: answer for request, answer in zip(judge_requests, answers)}

    for pair_id, prompt_id, i, j in pairs:
        prompt = by_prompt[prompt_id]
        source = prompt["source_doc_id"]
        parsed, failure = both_verdicts(verdicts, pair_id)
        if failure:
            rejects.append(reject(pair_id, source, "judge", *failure))
            continue
        (win_ab, a_ab, b_ab, why_ab), (win_ba, a_ba, b_ba, why_ba) = parsed["ab"], parsed["ba"]
        winner_ab = {"A": i, "B": j}.get(win_ab)  # None = tie
        winner_ba = {"A": j, "B": i}.get(win_ba)
        verdict_text = f"A/B order: {win_ab} ({why_ab}) | B/A order: {win_ba} ({why_ba})"
        if winner_ab is None and winner_ba is None:
            rejects.append(reject(pair_id, source, "judge", "tie", verdict_text))
            continue
        if winner_ab != winner_ba:
            rejects.append(reject(pair_id, source, "judge", "position_inconsistent", verdict_text))
            continue
        score = {i: (a_ab + b_ba) / 2, j: (b_ab + a_ba) / 2}
        chosen, rejected = winner_ab, j if winner_ab == i else i
        (chosen_model, chosen_t), (rejected_model, rejected_t) = candidate_label(config, chosen), candidate_label(config, rejected)
        rows.append({
            "id": pair_id, "prompt": prompt["prompt"], "chosen": candidates[prompt_id][chosen],
            "rejected": candidates[prompt_id][rejected], "chosen_model": chosen_model, "rejected_model": rejected_model,
            "chosen_temperature": chosen_t, "rejected_temperature": rejected_t,
            "chosen_score": score[chosen], "rejected_score": score[rejected], "judge_model": judge_model,
            "judge_rationale": verdict_text, "review_status": prefs.review_status, "source_id": prompt_id,
            "source_doc_id": source, "prompt_version": f"{plan.respond.prompt_version}+{plan.judge.prompt_version}",
        })
    # the gate's own key for a triple: what it would count as a repeat never reaches it
    rows, duplicates = FirstOfEach(PREFERENCE, SAME_EXAMPLE["preferences"]).split(rows, "judge")
    rejects += duplicates
    if duplicates:
        progress.say(f"repeats: {len(duplicates)} duplicate triple(s) rejected before the gate")
    # planned: the pairs each prompt can give (prompts refused before any request included)
    per_prompt = min(prefs.max_pairs_per_prompt, len(list(combinations(range(len(prefs.generators)), 2))))
    counts = {"prompts": len(plan.prompts) + len(plan.rejects), "pairs_judged": len(pairs), "triples": len(rows),
              "planned": (len(plan.prompts) + len(plan.rejects)) * per_prompt, "survived": len(rows),
              "duplicates": len(duplicates)}
    return JobResult(rows, rejects, stats, counts)
