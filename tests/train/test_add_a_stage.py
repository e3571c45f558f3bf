"""docs/ARCHITECTURE.md's recipe "add a training stage": one module declaring the stage and its
recipe, and one preset beside it. Here both live outside the repository (TRAIN_STAGE_DIRS), so the
test also proves that the CLI, the config loader, the data path and the Ray workers find a stage
through the registry alone."""
from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import train_fixtures as tf
from conftest import REPO, published, subprocess_env

pytestmark = pytest.mark.slow

TOY_STAGE = '''"""A toy stage: causal-LM fine-tuning on plain text rows (a `text` column)."""
import ray.train
from pydantic import Field
from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

from core.config import StrictModel
from train.arguments import trainer_arguments
from train.model import build_model, build_tokenizer
from train.method import TrainingMethod
from train.worker import fit, setup_worker, whole_dataset


class ToyOptions(StrictModel):
    lowercase: bool = Field(description="Lower-case the text before tokenising.")


def train_loop_per_worker(config_dict: dict) -> None:
    # setup
    worker = setup_worker(config_dict)
    config = worker.config
    tokenizer = build_tokenizer(config.model)
    # data: the whole (small) set on every worker, tokenised here
    rows = whole_dataset(ray.train.get_dataset_shard("train"))
    tokens = rows.map(lambda row: tokenizer(row["text"].lower() if config.toy.lowercase else row["text"],
                                            truncation=True, max_length=config.data.max_length),
                      remove_columns=rows.column_names)
    # trainer arguments, model, trainer, fit
    args = TrainingArguments(**trainer_arguments(config, worker.scratch))
    trainer = Trainer(model=build_model(config), args=args, train_dataset=tokens,
                      data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False), callbacks=worker.callbacks)
    fit(trainer, worker.scratch)


STAGE = TrainingMethod(
    name="toy",
    summary="causal-LM fine-tuning on plain text (a toy stage)",
    input_columns=("text",),
    train_loop_per_worker=train_loop_per_worker,
    needs_chat_template=False,
    options=ToyOptions,
)
'''
TOY_PRESET = "optim:\n  learning_rate: 3.0e-3\ntoy:\n  lowercase: true\n"


def test_a_stage_is_one_module_and_one_preset(tmp_path):
    stages = tmp_path / "stages"
    stages.mkdir()
    (stages / "toy.py").write_text(TOY_STAGE)
    (stages / "toy.yaml").write_text(TOY_PRESET)
    model = tf.tiny_model_dir(tmp_path / "base")
    data = tmp_path / "text.parquet"
    pq.write_table(pa.table({"text": [d.upper() for d in tf.DOCUMENTS] * 4}), data)
    config = tf.write_train_config(
        tmp_path / "toy.yaml", model_path=model, data_path=data, root=tmp_path, name="toy",
        deepspeed={"enabled": False}, scaling={"num_workers": 1},
        optim={"max_steps": 4, "learning_rate": 3e-3}, run={"save_steps": 2})
    env = subprocess_env(TRAIN_STAGE_DIRS=str(stages), PYTHONPATH=f"{REPO}:{REPO / 'tests'}")

    help_text = subprocess.run([sys.executable, "-m", "train", "--help"], cwd=REPO, env=env, capture_output=True,
                               text=True, timeout=120).stdout
    assert "toy" in help_text and "causal-LM fine-tuning on plain text" in help_text

    proc = subprocess.run([sys.executable, "-m", "train", "toy", str(config)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    out = published(tmp_path / "toy-model")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stage"] == "toy"
    assert manifest["config"]["toy"] == {"lowercase": True}  # from the preset beside the module
    assert manifest["summary"]["steps"] == 4 and manifest["summary"]["first_loss"] is not None
    assert (out / "model.safetensors").is_file()

    # the stage's section is typed by its module: a misspelt key is named before any work
    bad = tmp_path / "bad.yaml"
    bad.write_text(config.read_text() + "toy:\n  lowercas: true\n")
    proc = subprocess.run([sys.executable, "-m", "train", "toy", str(bad)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "toy.lowercas: unknown key" in proc.stderr
