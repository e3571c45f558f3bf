"""The run kit every job publishes through: skip a finished run, refuse to clobber, publish each run as an
immutable version (runs/<id>, its manifest listing every file) behind one atomic pointer (CURRENT), so a
crashed or killed writer leaves the previous version current and whole."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import progress
from core.config import StrictModel
from core.errors import OutputExistsError
from core.publish import current_run_dir, read_finished_manifest
from core.run import PublishedRun
from s3_server import s3  # noqa: F401 (the fixture)

REPO = Path(__file__).resolve().parents[2]


class Toy(StrictModel):
    output_dir: str
    size: int


def publish_once(config: Toy, log: list[str], **kwargs) -> dict:
    with progress.lines_to(log.append):
        run = PublishedRun(config.output_dir, config, "toy run", **kwargs)
        if run.finished:
            return run.finished
        with run.writing([]) as partial:
            with run.timed("work"):
                (partial / "data.txt").write_text("x" * config.size)
            run.manifest["outputs"] = {"data": {"path": "data.txt", "rows": config.size}}
        return run.manifest


def test_a_run_publishes_a_version_with_a_manifest_listing_its_files(tmp_path):
    config = Toy(output_dir=str(tmp_path / "out"), size=3)
    manifest = publish_once(config, [])
    run = tmp_path / "out" / "runs" / manifest["run_id"]
    assert json.loads((tmp_path / "out" / "CURRENT").read_text())["run_id"] == manifest["run_id"]
    on_disk = json.loads((run / "manifest.json").read_text())
    assert on_disk == manifest == read_finished_manifest(tmp_path / "out")
    assert on_disk["config"] == {"output_dir": config.output_dir, "size": 3}
    assert set(on_disk["timings_s"]) == {"work", "total"}
    assert [(f["path"], f["bytes"]) for f in on_disk["files"]] == [("data.txt", 3)]
    assert (run / "data.txt").read_text() == "xxx"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["CURRENT", "runs"]


def test_the_same_config_again_is_a_no_op_and_another_is_refused(tmp_path):
    config = Toy(output_dir=str(tmp_path / "out"), size=3)
    first = publish_once(config, [])
    log: list[str] = []
    assert publish_once(config, log)["run_id"] == first["run_id"]
    assert "already holds a finished toy run of this config" in log[0] and "nothing to do" in log[0]
    with pytest.raises(OutputExistsError, match="a finished run with a different config"):
        publish_once(Toy(output_dir=config.output_dir, size=4), [])
    replaced = publish_once(Toy(output_dir=config.output_dir, size=4), [], overwrite=True)
    assert replaced["run_id"] != first["run_id"] and (current_run_dir(tmp_path / "out") / "data.txt").read_text() == "xxxx"
    # the version replaced stays readable by its run id (a model's trained_on still resolves)
    assert (tmp_path / "out" / "runs" / first["run_id"] / "data.txt").read_text() == "xxx"


def test_a_directory_that_is_not_a_finished_run_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="not a finished run"):
        publish_once(Toy(output_dir=str(tmp_path / "out"), size=1), [])
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_a_crash_publishes_nothing_and_the_next_run_clears_what_it_left(tmp_path):
    config = Toy(output_dir=str(tmp_path / "out"), size=2)
    first = publish_once(config, [])
    run = PublishedRun(config.output_dir, config, "toy run", overwrite=True)
    with pytest.raises(RuntimeError, match="disk on fire"):
        with run.writing([]) as partial:
            (partial / "data.txt").write_text("half")
            raise RuntimeError("disk on fire")
    # the published run is untouched and still current; the crashed one left only its own folder
    assert read_finished_manifest(tmp_path / "out")["run_id"] == first["run_id"]
    assert partial.parent == tmp_path / "out" / "runs" and partial.is_dir()
    log: list[str] = []
    publish_once(config, log, overwrite=True)
    assert any("removed unfinished output of an earlier crashed run" in line for line in log)
    assert not partial.exists()


WRITER = """
import sys, time
from core.config import StrictModel
from core.run import PublishedRun

class Toy(StrictModel):
    output_dir: str
    size: int

run = PublishedRun(sys.argv[1], Toy(output_dir=sys.argv[1], size=int(sys.argv[2])), "toy run", overwrite=True)
with run.writing([]) as partial:
    for i in range(int(sys.argv[2])):
        (partial / f"part-{i}.txt").write_text(sys.argv[2] * 1000)
        print(i, flush=True)
        time.sleep(0.05)
"""


def files_in(folder: str | Path) -> dict[str, int]:
    """{name: bytes} of a run folder's files, local or on object storage."""
    from pyarrow.fs import FileSelector

    from core.storage import locate

    where = locate(str(folder), "test")
    infos = where.filesystem.get_file_info(FileSelector(where.path, recursive=True))
    return {info.path.rsplit("/", 1)[-1]: info.size for info in infos if info.type.name == "File"}


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_a_writer_killed_mid_run_leaves_the_previous_version_whole_and_readers_never_see_half(tmp_path, storage, request):
    out = str(tmp_path / "out")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if storage == "s3":
        out, env = "s3://corpus/published/out", {**env, **request.getfixturevalue("s3")[1]}
    subprocess.run([sys.executable, "-c", WRITER, out, "3"], check=True, env=env, capture_output=True)
    before = read_finished_manifest(out)

    writer = subprocess.Popen([sys.executable, "-c", WRITER, out, "40"], env=env, stdout=subprocess.PIPE, text=True)
    seen = []
    for line in writer.stdout:  # a reader at work while the writer writes
        listed = {f["path"]: f["bytes"] for f in read_finished_manifest(out)["files"]}
        on_storage = files_in(current_run_dir(out))
        seen.append(on_storage.pop("manifest.json") > 0 and listed == on_storage)
        if int(line) == 20:
            os.kill(writer.pid, signal.SIGKILL)  # in the middle of writing its version
            break
    writer.wait()
    assert all(seen) and len(seen) > 5
    assert read_finished_manifest(out) == before  # still current, and whole
    assert {f["path"]: f["bytes"] for f in before["files"]} == {k: v for k, v in files_in(current_run_dir(out)).items()
                                                                if k != "manifest.json"}


def test_old_versions_beyond_keep_versions_are_removed_and_said(tmp_path):
    config = Toy(output_dir=str(tmp_path / "out"), size=1)
    ids = [publish_once(config, [], overwrite=True)["run_id"] for _ in range(3)]
    log: list[str] = []
    ids.append(publish_once(config, log, overwrite=True)["run_id"])
    assert sorted(p.name for p in (tmp_path / "out" / "runs").iterdir()) == sorted(ids[1:])  # keep_versions: 3
    assert any(f"removed old version {tmp_path / 'out' / 'runs' / ids[0]}" in line for line in log)


def test_an_output_in_the_layout_before_versions_is_read_and_then_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "data.txt").write_text("old")
    (out / "manifest.json").write_text(json.dumps({"run_id": "old-run", "config_hash": "x"}))
    assert current_run_dir(out) == out and read_finished_manifest(out)["run_id"] == "old-run"
    manifest = publish_once(Toy(output_dir=str(out), size=2), [], overwrite=True)
    assert read_finished_manifest(out)["run_id"] == manifest["run_id"]
    assert sorted(p.name for p in out.iterdir()) == ["CURRENT", "runs"]  # the old files went once CURRENT was written


def test_a_finished_run_made_from_another_upstream_is_refreshed(tmp_path):
    config = Toy(output_dir=str(tmp_path / "out"), size=2)
    first = publish_once(config, [], upstream={"factory_run": {"run_id": "a"}})
    log: list[str] = []
    assert publish_once(config, log, upstream={"factory_run": {"run_id": "a"}})["run_id"] == first["run_id"]
    assert "on factory run a" in log[0]
    log.clear()
    refreshed = publish_once(config, log, upstream={"factory_run": {"run_id": "b"}})
    assert refreshed["run_id"] != first["run_id"] and refreshed["factory_run"] == {"run_id": "b"}
    assert "made from an earlier factory run" in log[0]


REMOTE_WRITER = """
import json, sys
import pyarrow as pa, pyarrow.compute as pc, ray
from core.config import StrictModel
from core.run import PublishedRun

class Toy(StrictModel):
    output_dir: str
    size: int

ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
run = PublishedRun(sys.argv[1], Toy(output_dir=sys.argv[1], size=int(sys.argv[2])), "toy run")

def staged(partial, manifest, staging):  # what the driver's staging folder holds just before publishing
    manifest["staged"] = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())

with run.writing([], before_publish=staged) as partial:
    rows = ray.data.range(int(sys.argv[2]), override_num_blocks=4).map_batches(
        lambda t: t.append_column("text", pc.if_else(pc.equal(pc.bit_wise_and(t["id"], 1), 0), "even", "odd")),
        batch_format="pyarrow")
    counts = run.write_data("data", rows, pa.schema([("id", pa.int64()), ("text", pa.string())]), ["text"])
    run.write_data("none", rows.filter(lambda row: False), pa.schema([("id", pa.int64())]))
    run.manifest["counted"] = dict(zip(counts["text"].to_pylist(), counts["n"].to_pylist()))
    (partial / "report.txt").write_text("small, written by the driver")
"""


def test_on_object_storage_ray_tasks_write_the_data_straight_there_and_the_manifest_lists_it(
        tmp_path, s3):  # noqa: F811
    """On a cluster a Ray task writes on whichever node it runs: into the driver's staging folder would lose it."""
    import boto3
    import xxhash

    endpoint, env = s3
    out = "s3://corpus/published/ray-data"
    done = subprocess.run([sys.executable, "-c", REMOTE_WRITER, out, "1000"], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]

    manifest = read_finished_manifest(out)
    assert manifest["staged"] == ["report.txt"]  # no data file passed through the driver's staging folder
    client = boto3.client("s3", endpoint_url=endpoint)
    prefix = f"published/ray-data/runs/{manifest['run_id']}/"
    objects = {o["Key"][len(prefix):]: o for o in client.list_objects_v2(Bucket="corpus", Prefix=prefix)["Contents"]
               if not o["Key"].endswith("/")}  # pyarrow's empty "folder/" markers are not files
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == set(objects) - {"manifest.json"}  # every file on the server, and nothing else
    for name, entry in listed.items():
        body = client.get_object(Bucket="corpus", Key=prefix + name)["Body"].read()
        assert entry["bytes"] == len(body) and entry["xxh3_128"] == xxhash.xxh3_128(body).hexdigest(), name
    assert sum(f["rows"] for f in manifest["files"] if f["path"].startswith("data/")) == 1000
    assert manifest["counted"] == {"even": 500, "odd": 500}  # as the writers counted the rows they sent
    assert [f["rows"] for f in manifest["files"] if f["path"].startswith("none/")] == [0]  # an empty dataset: one file


def test_old_versions_on_object_storage_are_removed_and_said(s3):  # noqa: F811
    import boto3

    endpoint, _ = s3
    config = Toy(output_dir="s3://corpus/published/kept", size=1)
    ids = [publish_once(config, [], overwrite=True)["run_id"] for _ in range(3)]
    log: list[str] = []
    ids.append(publish_once(config, log, overwrite=True)["run_id"])
    listing = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket="corpus", Prefix="published/kept/runs/")
    assert {o["Key"].split("/")[3] for o in listing["Contents"]} - {""} == set(ids[1:])  # keep_versions: 3
    assert any(f"removed old version s3://corpus/published/kept/runs/{ids[0]}" in line for line in log)
    assert read_finished_manifest(config.output_dir)["run_id"] == ids[-1]


def test_on_object_storage_current_is_one_put_written_after_the_run(s3, caplog):  # noqa: F811
    """Object storage has no rename: the pointer is published by a single PutObject (no multipart upload, which
    takes three requests), after every file of the run."""
    import logging

    caplog.set_level(logging.INFO, logger="werkzeug")  # the S3 server's request log
    publish_once(Toy(output_dir="s3://corpus/published/pointer", size=1), [])
    writes = [r.getMessage() for r in caplog.records if '"PUT ' in r.getMessage() or '"POST ' in r.getMessage()]
    pointer = [w for w in writes if "/published/pointer/CURRENT" in w]
    assert len(pointer) == 1 and '"PUT /corpus/published/pointer/CURRENT HTTP' in pointer[0], pointer
    assert writes[-1] == pointer[0]  # the last write of all
