"""Prepare reads a factory output on object storage and publishes there, through a real S3 API server on
loopback, with the same packed rows (in training order) and documents as the same run on local disk, and a
manifest listing what is on the store. The S3 run trains its tokenizer, which its tokenising Ray tasks read from
the store (a task on another node could not read the driver's disk); the local run trains the same one."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from core.publish import current_run_dir, read_finished_manifest

from conftest import REPO, read_output, subprocess_env  # noqa: F401
from prepare_corpus import topic_corpus, write_factory_output
from s3_server import s3, upload  # noqa: F401 (the fixture)

pytestmark = pytest.mark.slow


def prepare_config(path: Path, input_dir: str, output_dir: str) -> Path:
    path.write_text(yaml.safe_dump({
        "input_dir": input_dir, "output_dir": output_dir, "tokenizer": {"path": None, "train_vocab_size": 400},
        "curriculum": {"num_buckets": 2}, "grouping": {"embedder": "tfidf", "docs_per_partition": 40},
        "packing": {"seq_len": 64, "rows_per_shard": 8}, "validation": {"fraction": 0.2},
        "ray": {"num_cpus": 2, "batch_size": 32},
    }))
    return path


def read_tables(run: str | Path, manifest: dict) -> dict[str, pa.Table]:
    """Each data folder of a run as its manifest lists it (files in name order: the training order)."""
    folders = sorted({f["path"].split("/")[0] for f in manifest["files"] if f["path"].endswith(".parquet")})
    return {folder: pa.concat_tables(pq.read_table(f"{run}/{f['path']}") for f in sorted(
        manifest["files"], key=lambda f: f["path"]) if f["path"].startswith(f"{folder}/")) for folder in folders}


def test_prepare_from_and_to_s3_equals_the_same_run_on_local_disk(tmp_path, s3):  # noqa: F811
    endpoint, env = s3
    corpus = topic_corpus(per_topic=30, seed=5)
    factory = write_factory_output(tmp_path / "factory", [t for _, t in corpus[::2]], [t for _, t in corpus[1::2]])
    for path in sorted(p for p in factory.rglob("*") if p.is_file()):  # the same published output, on S3
        upload(endpoint, path, f"prep/factory/{path.relative_to(factory).as_posix()}")

    runs = {"local": (str(factory), str(tmp_path / "cpt")), "s3": ("s3://corpus/prep/factory", "s3://corpus/prep/cpt")}
    for name, (input_dir, output_dir) in runs.items():
        config = prepare_config(tmp_path / f"{name}.yaml", input_dir, output_dir)
        done = subprocess.run([sys.executable, "-m", "factory", "prepare", str(config), "-q"], cwd=REPO,
                              env=subprocess_env(**env), capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]

    local, remote = (read_finished_manifest(runs[name][1]) for name in ("local", "s3"))
    local_tables = read_tables(current_run_dir(runs["local"][1]), local)
    remote_tables = read_tables(current_run_dir(runs["s3"][1]), remote)
    assert set(remote_tables) == set(local_tables) >= {"train", "validation", "documents"}
    for folder in ("train", "validation"):  # packed rows: the same tokens in the same order
        assert remote_tables[folder].to_pylist() == local_tables[folder].to_pylist(), folder
    key = ["source", "id"]
    for folder in set(local_tables) - {"train", "validation"}:  # Ray's writers: the same rows, any file order
        assert sorted(remote_tables[folder].select(key).to_pylist(), key=str) == \
            sorted(local_tables[folder].select(key).to_pylist(), key=str), folder
    on_server = [f for f in remote["files"] if f["path"].startswith("documents/")]
    assert on_server and sum(f["rows"] for f in on_server) == remote_tables["documents"].num_rows
    assert any(f["path"] == "tokenizer/tokenizer.json" for f in remote["files"])  # published with the run
