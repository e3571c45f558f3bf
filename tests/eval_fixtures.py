"""Tiny, offline eval fixtures: the train tests' tokenizer and 2-layer Llama, a copy trained on the eval
text (and on each question's right answer) with a plain torch loop, a LoRA adapter, and eval sets."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from train_fixtures import DOCUMENTS, tiny_model_dir

REPO = Path(__file__).resolve().parents[1]
MMLU_SAMPLE = REPO / "eval" / "sample_data" / "mmlu_cs_sample.parquet"
MC_PROMPT = "The following is a multiple choice question about {subject}.\n\n{question}\nAnswer:"

# questions whose right answer the trained model is taught (the other choices never appear in training)
QUESTIONS = [
    ("what absorbs neutrons?", ["the control rods", "the turbine blades", "the diesel generators", "the welds"], 0),
    ("what moves the coolant?", ["the operators", "a pump", "the containment", "the sensors"], 1),
    ("what is the containment made of?", ["glass panels", "steel wire", "thick reinforced concrete", "wood"], 2),
    ("when do the generators start?", ["every eighteen months", "at each shift", "never",
                                       "within ten seconds of a grid loss"], 3),
    ("what measures the core temperature?", ["three redundant sensors", "the pump", "the valves", "steam"], 0),
    ("what spins when steam reaches it?", ["the concrete", "the turbine", "the rods", "the log"], 1),
]
GENERAL_TEXT = [
    "the city council met on tuesday to discuss a new plan for the public library.",
    "farmers in the valley started to harvest their apples a week earlier than usual.",
    "the museum will open a new exhibition about the history of the railway next month.",
]


def preset_section(model, section: str, **overrides):
    """A section of eval's preset (eval/presets/defaults.yaml) with ``overrides``, validated as ``model``."""
    from core.config import read_yaml
    from eval.config import DEFAULTS

    return model.model_validate({**read_yaml(DEFAULTS)[section], **overrides})


def in_process(**overrides):
    """The preset's ``ray:`` section, scoring in this process with small batches."""
    from eval.config import EvalRayConfig

    return preset_section(EvalRayConfig, "ray", **{"enabled": False, "batch_size": 4, **overrides})


def score(model_dir, task: str, settings: dict, items: pa.Table, ray_config=None) -> pa.Table:
    """One checkpoint's scores of an ``eval.scorers`` task for ``items``, in their order (on CPU, in this
    process unless ``ray_config`` says otherwise)."""
    from eval.config import CheckpointConfig, ModelRuntimeConfig
    from eval.streaming import model_workers
    from eval.suites.common import Work, aligned

    runtime = ModelRuntimeConfig(device="cpu", dtype="fp32", forward_batch_size=3).model_dump()
    with model_workers(ray_config or in_process(), runtime) as workers:
        workers.load(CheckpointConfig(name="m", path=str(model_dir)))
        return aligned(items, workers.map(Work("test", "test", task, settings, items, ("m",)), "test"))


def question_rows() -> list[dict]:
    return [{"id": f"q{i}", "subject": "reactor_operations", "question": q, "choices": c, "answer": a}
            for i, (q, c, a) in enumerate(QUESTIONS)]


def write_table(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_documents(path: Path, texts: list[str], prefix: str) -> Path:
    return write_table(path, [{"id": f"{prefix}-{i}", "text": t, "title": f"{prefix} {i}"} for i, t in enumerate(texts)])


def training_texts() -> list[str]:
    """The domain documents plus each question with its right answer, as the eval prompt will show it."""
    answered = [MC_PROMPT.format(subject="reactor operations", question=q) + " " + c[a] for q, c, a in QUESTIONS]
    return DOCUMENTS + answered


def train_copy(source: Path, target: Path, texts: list[str], steps: int = 250) -> Path:
    """``source`` trained on ``texts`` until it has nearly memorised them (plain torch, a few seconds)."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    shutil.copytree(source, target, dirs_exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source)
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(target)
    return target


def lora_adapter(base: Path, target: Path) -> Path:
    """A LoRA adapter with random (non-zero) weights, so it really changes the base's scores."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.save_pretrained(target)
    return target


def models(root: Path) -> dict[str, Path]:
    base = tiny_model_dir(root / "base")
    return {"base": base, "trained": train_copy(base, root / "trained", training_texts()),
            "lora": lora_adapter(base, root / "lora")}
