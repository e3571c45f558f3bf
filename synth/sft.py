"""SFT examples grounded in documents: one request per (document, task type), then robustness variants.

Stage ``generate`` asks the generator for a conversation of the task's number of turns about
one document; answers that are malformed, too short or not grounded in the document become
rejects. Stage ``variant`` derives, from each kept example, copies whose first instruction is
paraphrased or code-switched (an LLM rewrite; the grounded answer is reused) or has typos.
A variant that comes back unchanged is a reject (``variant_unchanged``), and of identical
conversations only the first is kept (``synth.repeats``): the rest are ``duplicate`` rejects.
"""
from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from core import progress
from core.blank import is_blank
from core.contracts import SFT
from core.llm.requests import ChatRequest, RequestStats
from core.llm.parse_retry import resolve_parsed
from quality.suites import SAME_EXAMPLE
from synth.config import SynthConfig
from synth.grounding import overlap
from synth.inputs import document_title, read_input
from core.llm.json_answers import parse_json_answer
from synth.repeats import FirstOfEach
from synth.results import JobResult, reject
from synth.templates import PromptTemplate, load_template
from synth.typos import add_typos

SFT_FIELDS = {"document", "title", "turns"}
REWRITE_FIELDS = {"instruction"}


@dataclass
class SftPlan:
    documents: list[dict]
    files: list[Path]
    tasks: dict[str, PromptTemplate]
    variants: dict[str, PromptTemplate]
    rejects: list[dict] = field(default_factory=list)


def plan_sft(config: SynthConfig) -> SftPlan:
    """Templates and documents, checked before any request: errors name the file and key."""
    dirs = config.template_dirs()
    tasks = {t.task_type: load_template(t.template, dirs, SFT_FIELDS) for t in config.sft.tasks}
    variants = {v.name: load_template(v.template, dirs, REWRITE_FIELDS | set(v.params))
                for v in config.sft.variants if v.template}
    inp = config.input
    columns = {inp.id_column: "id_column", inp.text_column: "text_column"}
    if inp.title_column:
        columns[inp.title_column] = "title_column"
    table, files = read_input(inp, "input", columns)
    plan = SftPlan([], files, tasks, variants)
    for index, row in enumerate(table.to_pylist()):
        doc_id, text = row[inp.id_column], row[inp.text_column]
        if doc_id is None or not str(doc_id).strip():
            plan.rejects.append(reject(f"row-{index}", None, "input", "missing_id", f"row {index}: null or empty id"))
        elif not isinstance(text, str) or is_blank(text):
            plan.rejects.append(reject(str(doc_id), str(doc_id), "input", "empty_document", f"row {index}"))
        else:
            plan.documents.append({"id": str(doc_id), "text": text, "title": document_title(row, inp.title_column)})
    return plan


def generation_requests(plan: SftPlan, config: SynthConfig) -> list[ChatRequest]:
    endpoint = config.endpoints[config.sft.generator]
    params = config.sft.sampling.model_dump()
    return [
        ChatRequest.from_template(f"{doc['id']}/{task.task_type}/plain", config.sft.generator, endpoint.model,
                                  plan.tasks[task.task_type], params,
                                  document=doc["text"], title=doc["title"], turns=str(task.turns))
        for doc in plan.documents for task in config.sft.tasks
    ]


def parse_conversation(text: str, template: PromptTemplate, turns: int, document: str, min_overlap: float):
    """(messages, None) or (None, (reason, detail))."""
    value, problem = parse_json_answer(text, template.response_schema)
    if problem:
        return None, problem
    conversation = value["turns"]
    if len(conversation) < turns:
        return None, ("too_few_turns", f"asked for {turns}, got {len(conversation)}")
    messages = []
    for i, turn in enumerate(conversation[:turns]):
        grounded = overlap(turn["assistant"], document)
        if grounded < min_overlap:
            return None, ("ungrounded", f"turn {i}: {grounded:.0%} of the answer's content words are in the "
                                        f"document (min {min_overlap:.0%})")
        messages += [{"role": "user", "content": turn["user"].strip()},
                     {"role": "assistant", "content": turn["assistant"].strip()}]
    return messages, None


def variant_rng(seed: int, example_id: str) -> random.Random:
    return random.Random(hashlib.sha256(f"{seed}:{example_id}".encode()).digest())


def with_first_instruction(messages: list[dict], instruction: str) -> list[dict]:
    return [{"role": "user", "content": instruction}] + messages[1:]


def run_sft(plan: SftPlan, config: SynthConfig) -> JobResult:
    sft, generator_model = config.sft, config.endpoints[config.sft.generator].model
    rows, rejects = [], list(plan.rejects)
    stats = {"generate": RequestStats(), "variant": RequestStats()}
    docs = {d["id"]: d for d in plan.documents}
    turns = {t.task_type: t.turns for t in sft.tasks}

    requests = generation_requests(plan, config)
    progress.say(f"generate: {len(plan.documents)} documents x {len(sft.tasks)} task types = {len(requests)} requests")

    def conversation(request: ChatRequest, text: str):
        doc_id, task_type, _ = request.item_id.rsplit("/", 2)
        return parse_conversation(text, plan.tasks[task_type], turns[task_type], docs[doc_id]["text"],
                                  sft.grounding_min_overlap)

    answers = resolve_parsed(requests, config.llm_settings(), conversation, config.max_parse_retries,
                             stats["generate"], "generate")
    for request, answer in zip(requests, answers):
        doc_id, task_type, _ = request.item_id.rsplit("/", 2)
        if not answer.result.ok:
            rejects.append(reject(request.item_id, doc_id, "generate", answer.result.reason, answer.result.detail,
                                  raw=answer.raw()))
            continue
        messages = answer.value
        if answer.problem:
            rejects.append(reject(request.item_id, doc_id, "generate", *answer.problem, raw=answer.raw()))
            continue
        rows.append({"id": request.item_id, "task_type": task_type, "variant": "plain", "messages": messages,
                     "source_doc_id": doc_id, "generator": generator_model,
                     "prompt_version": plan.tasks[task_type].prompt_version})

    # repeats: two task types that got the same conversation keep the first; their variants are never asked for
    first_of_each = FirstOfEach(SFT, SAME_EXAMPLE["sft"])
    rows, duplicates = first_of_each.split(rows, "generate")
    rejects += duplicates

    variant_rows, variant_requests = [], []

    def add_variant(example: dict, item_id: str, name: str, instruction: str, **extra) -> None:
        """A variant whose instruction came back as its original's would repeat it: a reject, not a row."""
        if instruction == example["messages"][0]["content"]:
            rejects.append(reject(item_id, example["source_doc_id"], "variant", "variant_unchanged",
                                  f"the {name} instruction is the same as {example['id']}'s"))
            return
        variant_rows.append({**example, "id": item_id, "variant": name,
                             "messages": with_first_instruction(example["messages"], instruction), **extra})

    for example in rows:
        base_id = example["id"].rsplit("/", 1)[0]
        for variant in sft.variants:
            item_id = f"{base_id}/{variant.name}"
            if variant.typo_rate:
                add_variant(example, item_id, variant.name, add_typos(
                    example["messages"][0]["content"], variant.typo_rate, variant_rng(config.seed, item_id)))
            else:
                template = plan.variants[variant.name]
                variant_requests.append((example, variant.name, ChatRequest.from_template(
                    item_id, sft.generator, generator_model, template, sft.sampling.model_dump(),
                    instruction=example["messages"][0]["content"], **variant.params)))
    if variant_requests:
        progress.say(f"variant: {len(variant_requests)} instruction rewrites")
    variant_of = {request.item_id: name for _, name, request in variant_requests}
    answers = resolve_parsed(
        [r for _, _, r in variant_requests], config.llm_settings(),
        lambda request, text: parse_json_answer(text, plan.variants[variant_of[request.item_id]].response_schema),
        config.max_parse_retries, stats["variant"], "variant")
    for (example, name, request), answer in zip(variant_requests, answers):
        template = plan.variants[name]
        if not answer.result.ok:
            rejects.append(reject(request.item_id, example["source_doc_id"], "variant", answer.result.reason,
                                  answer.result.detail, raw=answer.raw()))
            continue
        if answer.problem:
            rejects.append(reject(request.item_id, example["source_doc_id"], "variant", *answer.problem,
                                  raw=answer.raw()))
            continue
        add_variant(example, request.item_id, name, answer.value["instruction"].strip(),
                    prompt_version=f"{example['prompt_version']}+{template.prompt_version}")
    # a variant may still repeat another row: the same rewrite of two questions that share an answer
    variant_rows, duplicates = first_of_each.split(variant_rows, "variant")
    rejects += duplicates
    reasons = Counter(r["reason"] for r in rejects)
    if reasons["duplicate"] or reasons["variant_unchanged"]:
        progress.say(f"repeats: {reasons['duplicate']} duplicate conversation(s) and {reasons['variant_unchanged']} "
                     f"unchanged variant(s) rejected before the gate")
    # planned: an example per (input document, task type), documents refused before any request included
    counts = {"documents": len(plan.documents) + len(plan.rejects), "examples": len(rows),
              "planned": (len(plan.documents) + len(plan.rejects)) * len(sft.tasks), "survived": len(rows),
              "variant_examples": len(variant_rows), "duplicates": reasons["duplicate"],
              "variants_unchanged": reasons["variant_unchanged"]}
    return JobResult(rows + variant_rows, rejects, stats, counts)
