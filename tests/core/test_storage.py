"""Inputs on object storage: the Parquet a job reads may be an s3:// URI (a file, a folder, a glob, or a
published run whose data folder is meant), checked before any work with errors naming the URI and the key,
through a real S3 API server on loopback."""
from __future__ import annotations

import glob
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.errors import InputError
from core.parquet import parquet_files, published_data_dir, require_columns
from core.storage import expand, local_location, locate
from s3_server import s3, upload  # noqa: F401 (the fixture)


def test_a_glob_means_what_pythons_glob_means(tmp_path):
    """Object stores have no glob: ours must agree with glob(recursive=True), * staying in its folder."""
    for name in ("a.parquet", "b.parquet", "sub/c.parquet", "sub/deep/d.parquet", "sub/e.jsonl", "part-7.parquet"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    for pattern in ("*.parquet", "**/*.parquet", "sub/*.parquet", "sub/**/*.parquet", "part-[0-9].parquet",
                    "?.parquet", "sub/*"):
        full = str(tmp_path / pattern)
        ours = [f.path for f in expand(local_location(full), "k", (".parquet",))]
        theirs = sorted(p for p in glob.glob(full, recursive=True) if Path(p).is_file())
        assert ours == theirs, pattern


def published_run_on_s3(endpoint: str, tmp_path: Path, rows: int = 5) -> tuple[str, pa.Table]:
    """A factory-style published run (manifest.json + documents/) uploaded under s3://corpus/runs/factory."""
    table = pa.table({"id": [f"d{i}" for i in range(rows)], "text": [f"text {i}" for i in range(rows)],
                      "meta": ["{}"] * rows})
    pq.write_table(table.slice(0, 2), tmp_path / "part-0.parquet")
    pq.write_table(table.slice(2), tmp_path / "part-1.parquet")
    (tmp_path / "manifest.json").write_text(json.dumps({"run_id": "r1"}))
    for name in ("part-0.parquet", "part-1.parquet"):
        upload(endpoint, tmp_path / name, f"runs/factory/documents/{name}")
    upload(endpoint, tmp_path / "manifest.json", "runs/factory/manifest.json")
    return "s3://corpus/runs/factory", table


def test_a_published_run_on_s3_is_read_as_its_data_folder(tmp_path, s3):  # noqa: F811
    endpoint, _ = s3
    run, table = published_run_on_s3(endpoint, tmp_path)
    folder = published_data_dir(run, ("sft", "documents"))
    assert folder == f"{run}/documents"
    files = parquet_files(folder, "input.path")
    assert files == [f"{run}/documents/part-0.parquet", f"{run}/documents/part-1.parquet"]
    assert pa.concat_tables(pq.read_table(f) for f in files).equals(table)  # pyarrow opens the URIs itself

    require_columns(files, {"id": "input.id_column", "text": "input.text_column"}, "input.path")
    with pytest.raises(InputError) as missing:
        require_columns(files, {"body": "input.text_column"}, "input.path")
    assert f"{run}/documents/part-0.parquet" in str(missing.value) and "input.text_column" in str(missing.value)


def test_synth_and_train_read_their_inputs_from_s3(tmp_path, s3):  # noqa: F811
    from synth.config import InputConfig
    from synth.inputs import read_input

    endpoint, _ = s3
    run, table = published_run_on_s3(endpoint, tmp_path)
    rows, files = read_input(InputConfig(path=run, id_column="id", text_column="text", title_column=None),
                             "input", {"id": "id_column", "text": "text_column"})
    assert rows.select(["id", "text"]).equals(table.select(["id", "text"])) and len(files) == 2

    with pytest.raises(InputError) as error:
        parquet_files("s3://corpus/runs/nothing", "data.train")
    assert str(error.value) == "data.train: s3://corpus/runs/nothing does not exist"


def test_the_variables_come_first_and_the_config_endpoint_serves_without_them(tmp_path, s3, monkeypatch):  # noqa: F811
    from core.storage import default_storage, require_exists

    endpoint, _ = s3
    (tmp_path / "manifest.json").write_text("{}")
    upload(endpoint, tmp_path / "manifest.json", "cfg/manifest.json")
    storage = default_storage().model_copy(update={"endpoint_url": endpoint, "max_attempts": 1,
                                                   "connect_timeout_s": 1, "request_timeout_s": 5})
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert require_exists(locate("s3://corpus/cfg/manifest.json", "k", storage), "k").size > 0
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # nothing listens there: it must be used
    with pytest.raises(InputError) as error:
        require_exists(locate("s3://corpus/cfg/manifest.json", "input.path", storage), "input.path")
    assert str(error.value).startswith("input.path: s3://corpus/cfg/manifest.json: cannot be read")
