"""Tiny, offline training fixtures: a byte-level BPE tokenizer trained on the fly with a chat
template, a 2-layer Llama (hidden 64) built from a config, and Parquet inputs in the CPT, SFT and
preference contracts. Nothing touches the network."""
from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# ChatML with trl's {% generation %} markers, so assistant tokens (and their end-of-turn) are masked in
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] }}<|im_end|>{% endgeneration %}"
    "{% else %}{{ message['content'] }}<|im_end|>{% endif %}{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<pad>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]

DOCUMENTS = [
    "the reactor core temperature is measured by three redundant sensors.",
    "a pump moves coolant from the core to the heat exchanger.",
    "the control rods absorb neutrons and slow the chain reaction.",
    "operators log every valve position at the start of each shift.",
    "the turbine spins when steam from the exchanger reaches its blades.",
    "backup diesel generators start within ten seconds of a grid loss.",
    "inspection of the welds happens every eighteen months.",
    "the containment building is made of thick reinforced concrete.",
]
QA = [
    ("what absorbs neutrons?", "the control rods absorb neutrons."),
    ("what moves the coolant?", "a pump moves the coolant."),
    ("when do the generators start?", "within ten seconds of a grid loss."),
    ("what is the containment made of?", "thick reinforced concrete."),
]


def build_tokenizer(path: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = DOCUMENTS + [q for q, _ in QA] + [a for _, a in QA] + ["user assistant system"]
    tok.train_from_iterator(corpus * 4, trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<|im_end|>", bos_token="<|endoftext|>",
        unk_token=None, chat_template=CHAT_TEMPLATE,
    )
    fast.save_pretrained(path)
    return path


def build_model(path: Path, vocab_size: int, seed: int = 0) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        pad_token_id=0, bos_token_id=1, eos_token_id=3, tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    return path


def tiny_model_dir(root: Path) -> Path:
    """A directory holding both the tiny model and its tokenizer (as a hub checkpoint would)."""
    from transformers import AutoTokenizer

    root.mkdir(parents=True, exist_ok=True)
    build_tokenizer(root)
    build_model(root, len(AutoTokenizer.from_pretrained(root)))
    return root


def documents_tokens(tokenizer) -> list[list[int]]:
    return [tokenizer(doc)["input_ids"] + [tokenizer.convert_tokens_to_ids("<|endoftext|>")] for doc in DOCUMENTS]


def pack(docs: list[list[int]], window: int) -> list[dict]:
    """Greedy packing into windows of at most `window` tokens, documents never split (the test's own)."""
    rows, ids, lengths = [], [], []
    for doc in docs:
        if ids and len(ids) + len(doc) > window:
            rows.append({"input_ids": ids, "doc_lengths": lengths, "n_tokens": len(ids)})
            ids, lengths = [], []
        ids, lengths = ids + doc, lengths + [len(doc)]
    rows.append({"input_ids": ids, "doc_lengths": lengths, "n_tokens": len(ids)})
    return rows


CPT_SCHEMA = pa.schema([("input_ids", pa.list_(pa.int32())), ("doc_lengths", pa.list_(pa.int32())),
                        ("n_tokens", pa.int32())])


def write_cpt(path: Path, rows: list[dict], copies: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows * copies, schema=CPT_SCHEMA), path, compression="zstd")
    return path


def write_sft(path: Path, copies: int = 1) -> Path:
    rows = [{"id": f"sft-{i}", "task_type": "qa",
             "messages": [{"role": "system", "content": "answer briefly."},
                          {"role": "user", "content": q}, {"role": "assistant", "content": a}],
             "source_doc_id": f"doc-{i}", "generator": "test", "prompt_version": "v1"}
            for i, (q, a) in enumerate(QA)] * copies
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path, compression="zstd")
    return path


def write_preferences(path: Path, copies: int = 1) -> Path:
    rows = [{"id": f"pref-{i}", "prompt": q, "chosen": a, "rejected": QA[(i + 1) % len(QA)][1],
             "chosen_model": "m1", "rejected_model": "m2", "chosen_score": 9.0, "rejected_score": 2.0,
             "rationale": "the chosen answer is correct", "review_status": "approved" if i != 3 else "rejected"}
            for i, (q, a) in enumerate(QA)] * copies
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path, compression="zstd")
    return path


def write_train_config(path: Path, *, model_path: Path, data_path: Path, root: Path, name: str, **sections) -> Path:
    """A CPU config on a local Ray of this machine's CPUs: 2 workers x 0.5 CPU (the rest reads the data),
    ZeRO-2 over gloo, fp32 (bf16 kernels are slow on CPU)."""
    from core.config import deep_merge

    config = {
        "output_dir": str(root / f"{name}-model"),
        "model": {"path": str(model_path), "gradient_checkpointing": False},
        "data": {"train": str(data_path), "max_length": 64},
        "optim": {"learning_rate": 3e-3, "warmup_ratio": 0.0, "per_device_batch_size": 2,
                  "gradient_accumulation_steps": 1, "max_steps": 8},
        "scaling": {"num_workers": 2, "use_gpu": False, "resources_per_worker": {"CPU": 0.5}},
        "run": {"name": name, "storage_path": str(root / "ray"),
                "precision": "fp32", "save_steps": 4, "logging_steps": 1, "max_failures": 1},
        "ray": {"num_cpus": None},
    }
    config = deep_merge(config, sections)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def publish_copy(source: Path, output: Path) -> Path:
    """``source``'s files published at ``output`` the way a job publishes its output (a new version
    ``runs/<id>`` behind ``CURRENT``, each call); returns ``output``, the path a config names."""
    import shutil

    from pydantic import BaseModel

    from core.run import PublishedRun

    class Copy(BaseModel):
        source: str

    run = PublishedRun(output, Copy(source=str(source)), "copy", overwrite=True)
    with run.writing([]) as partial:
        shutil.copytree(source, partial, dirs_exist_ok=True)
    return output
