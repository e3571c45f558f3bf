"""The run kit every job publishes through: skip a finished run, refuse to clobber, publish atomically
with the manifest last, and leave nothing half-finished under the output's name after a crash."""
from __future__ import annotations

import json

import pytest

from core import progress
from core.config import StrictModel
from core.errors import OutputExistsError
from core.run import PublishedRun


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


def test_a_run_publishes_its_output_with_the_manifest(tmp_path):
    config = Toy(output_dir=str(tmp_path / "out"), size=3)
    manifest = publish_once(config, [])
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk == manifest
    assert on_disk["config"] == {"output_dir": config.output_dir, "size": 3}
    assert set(on_disk["timings_s"]) == {"work", "total"}
    assert (tmp_path / "out" / "data.txt").read_text() == "xxx"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no partial left beside it


def test_the_same_config_again_is_a_no_op_and_another_is_refused(tmp_path):
    config = Toy(output_dir=str(tmp_path / "out"), size=3)
    first = publish_once(config, [])
    log: list[str] = []
    assert publish_once(config, log)["run_id"] == first["run_id"]
    assert "already holds a finished toy run of this config" in log[0] and "nothing to do" in log[0]
    with pytest.raises(OutputExistsError, match="a finished run with a different config"):
        publish_once(Toy(output_dir=config.output_dir, size=4), [])
    replaced = publish_once(Toy(output_dir=config.output_dir, size=4), [], overwrite=True)
    assert replaced["run_id"] != first["run_id"] and (tmp_path / "out" / "data.txt").read_text() == "xxxx"


def test_a_directory_that_is_not_a_finished_run_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="not a finished run"):
        publish_once(Toy(output_dir=str(tmp_path / "out"), size=1), [])
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_a_crash_publishes_nothing_and_the_next_run_clears_its_partial(tmp_path):
    config = Toy(output_dir=str(tmp_path / "out"), size=2)
    first = publish_once(config, [])
    run = PublishedRun(config.output_dir, config, "toy run", overwrite=True)
    with pytest.raises(RuntimeError, match="disk on fire"):
        with run.writing([]) as partial:
            (partial / "data.txt").write_text("half")
            raise RuntimeError("disk on fire")
    # the published run is untouched; the crashed one left only its partial directory
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["run_id"] == first["run_id"]
    assert [p.name for p in tmp_path.glob("out.partial-*")] == [partial.name]
    log: list[str] = []
    publish_once(config, log, overwrite=True)
    assert any("removed unfinished output of an earlier crashed run" in line for line in log)
    assert not list(tmp_path.glob("out.partial-*"))


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
