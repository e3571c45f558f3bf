"""The factory reads its sources from, and publishes to, object storage: s3:// Parquet, JSONL, .jsonl.gz and
.jsonl.zst through a real S3 API server on loopback behind a proxy that fails or stalls a request in ten, with
the same result as the same files on local disk; a missing bucket or key, or a scheme with no filesystem, is
exit 2 naming the URI and the config key before any work."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from core.publish import current_run_dir, read_finished_manifest

from conftest import REPO, parquet_source, read_output, subprocess_env, write_config
from fault_proxy import fault_proxy
from s3_server import s3, upload  # noqa: F401 (the fixture)

SAMPLE = REPO / "factory" / "sample_data"


def sample_files(folder: Path) -> dict[str, Path]:
    """A slice of the bundled sample in every source format the factory reads, compressed JSONL included."""
    folder.mkdir(parents=True, exist_ok=True)
    arxiv = folder / "arxiv.parquet"
    pq.write_table(pq.read_table(SAMPLE / "arxiv_cs.parquet").slice(0, 300), arxiv)
    lines = (SAMPLE / "news.jsonl").read_bytes().splitlines(keepends=True)
    plain, zipped, zstd = folder / "news.jsonl", folder / "news.jsonl.gz", folder / "more-news.jsonl.zst"
    plain.write_bytes(b"".join(lines[:60]))
    zipped.write_bytes(gzip.compress(b"".join(lines[60:120])))
    with pa.output_stream(str(zstd), compression="zstd") as out:
        out.write(b"".join(lines[120:180]) + b'{"doc_id": "broken-1", "body": 7}\n')  # a reject row, as locally
    return {"arxiv": arxiv, "news": plain, "news_gz": zipped, "news_zst": zstd}


def factory_config(path: Path, files: dict[str, str], output_dir: Path) -> Path:
    meta = {"meta_columns": ["title"]}
    return write_config(path, sources=[
        parquet_source("arxiv", files["arxiv"], **meta),
        {"name": "news", "path": [files["news"], files["news_gz"], files["news_zst"]], "text_column": "body",
         "id_column": "doc_id", "domain": "general", **meta},
    ], output_dir=output_dir, preset="scientific")


def read_s3_output(output: str) -> SimpleNamespace:
    """What a reader of a published output on S3 sees: CURRENT's run, and only the files its manifest lists."""
    manifest = read_finished_manifest(output)
    run = current_run_dir(output)
    tables = {folder: pa.concat_tables(pq.read_table(f"{run}/{f['path']}") for f in manifest["files"]
                                       if f["path"].startswith(f"{folder}/"))
              for folder in ("documents", "rejects")}
    return SimpleNamespace(manifest=manifest, kept_ids=set(tables["documents"]["id"].to_pylist()), **tables)


def run_factory_cli(config: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "factory", "run", str(config), "-q"], cwd=REPO,
                          env=subprocess_env(**env), capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_sources_on_s3_give_the_same_documents_and_rejects_as_on_local_disk(tmp_path, s3):  # noqa: F811
    endpoint, env = s3
    local = {name: str(path) for name, path in sample_files(tmp_path / "local").items()}
    remote = {name: upload(endpoint, Path(path), f"crawl/{Path(path).name}") for name, path in local.items()}

    outputs = {"local": tmp_path / "out-local", "s3": "s3://corpus/out/factory"}  # published where it was read
    done = run_factory_cli(factory_config(tmp_path / "local.yaml", local, outputs["local"]), env)
    assert done.returncode == 0, done.stderr[-3000:]
    # the S3 run goes through a proxy that answers 503 to every 10th request and stalls the one after it
    # the dedup scratch of a run publishing to object storage goes to storage.scratch_dir (a shared disk on a
    # cluster), and is gone once the run is published
    scratch = tmp_path / "scratch"
    s3_config = factory_config(tmp_path / "s3.yaml", remote, outputs["s3"])
    s3_config.write_text(s3_config.read_text() + yaml.safe_dump({"storage": {"scratch_dir": str(scratch)}}))
    with fault_proxy(endpoint, fail_every=10) as (flaky, proxy):
        done = run_factory_cli(s3_config, {**env, "AWS_ENDPOINT_URL": flaky})
    assert done.returncode == 0, done.stderr[-3000:]
    assert proxy.faults >= 3 and proxy.stalls >= 3  # the faults happened, and were retried through

    local_run, s3_run = read_output(outputs["local"]), read_s3_output(outputs["s3"])
    assert s3_run.kept_ids == local_run.kept_ids and len(s3_run.kept_ids) > 200
    columns = ["id", "stage", "reason"]
    assert sorted(s3_run.rejects.select(columns).to_pylist(), key=str) == \
        sorted(local_run.rejects.select(columns).to_pylist(), key=str)
    assert "broken-1" in s3_run.rejects["id"].to_pylist()  # the zstd file was read through, line by line
    inputs = {entry["path"]: entry for entry in s3_run.manifest["inputs"]}
    assert set(inputs) == set(remote.values())  # the manifest names each object as the config did
    assert all(entry["bytes"] > 0 for entry in inputs.values())
    assert "test-secret" not in json.dumps(s3_run.manifest)
    assert scratch.is_dir() and not any(scratch.iterdir())

    # the manifest lists exactly the files on the server, with their sizes and row counts
    import boto3

    prefix = f"out/factory/runs/{s3_run.manifest['run_id']}/"
    objects = {o["Key"][len(prefix):]: o["Size"] for o in boto3.client("s3", endpoint_url=endpoint)
               .list_objects_v2(Bucket="corpus", Prefix=prefix)["Contents"] if not o["Key"].endswith("/")}
    assert {f["path"]: f["bytes"] for f in s3_run.manifest["files"]} == \
        {name: size for name, size in objects.items() if name != "manifest.json"}
    rows = {folder: sum(f["rows"] for f in s3_run.manifest["files"] if f["path"].startswith(f"{folder}/"))
            for folder in ("documents", "rejects")}
    assert rows == {"documents": len(s3_run.kept_ids), "rejects": s3_run.rejects.num_rows}
    # the quality gate read the data on the store; its Data Docs are published with the run, as locally
    assert s3_run.manifest["quality"]["success"] and s3_run.manifest["quality"]["data_docs"] == "quality/index.html"
    assert "quality/index.html" in objects


@pytest.mark.parametrize("path, says", [
    ("s3://no-such-bucket/crawl/a.parquet", "the bucket 'no-such-bucket' does not exist"),
    ("s3://corpus/crawl/missing.parquet", "s3://corpus/crawl/missing.parquet does not exist"),
    ("s3://corpus/nothing-here/*.parquet", "s3://corpus/nothing-here/*.parquet does not exist"),
    ("abfs://container/a.parquet", "pip install adlfs"),
    ("zz://x/a.parquet", "unknown URI scheme zz://"),
    # hf:// through fsspec: offline here (no network), a missing repository where there is one: named either way
    ("hf://datasets/nobody-here/none/a.parquet", "hf://datasets/nobody-here/none/a.parquet"),
])
def test_a_bad_uri_is_exit_2_naming_it_and_the_key_before_any_work(tmp_path, capsys, s3, path, says):  # noqa: F811
    from factory.__main__ import main

    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "out"), "preset": "web",
        "sources": [{"name": "crawl", "path": path, "text_column": "text", "id_column": "id", "domain": "domain"}]}))
    assert main(["run", str(config)]) == 2
    error = capsys.readouterr().err
    assert "sources[0] (crawl).path" in error and says in error, error
    assert not (tmp_path / "out").exists()
