"""What a job prints while Ray Data runs: by default one line per execution (rows read, rows reaching its last
operator, rate) instead of Ray's progress logs, and the job's own lines; -q leaves only the job's summary;
every job takes -v/-q."""
from __future__ import annotations

import pytest

from core import progress
from core.config import StrictModel
from core.ray_runtime import RayConfig, init_ray
from core.run import PublishedRun


@pytest.fixture
def verbosity_restored():
    yield
    progress.set_verbosity(progress.NORMAL)
    progress.apply_to_ray_data()


def run_pipeline(ray) -> None:
    ray.data.range(60, override_num_blocks=3).map_batches(lambda batch: batch).materialize()


@pytest.mark.parametrize("job, argv", [("factory", ["run", "cfg.yaml"]),
                                       ("synth", ["sft", "cfg.yaml"]), ("quality", ["validate", "sft", "out"])])
def test_every_job_takes_verbose_and_quiet(job, argv, verbosity_restored):
    import importlib

    parser = importlib.import_module(f"{job}.__main__").parser()
    for flags, level in (([], progress.NORMAL), (["-q"], progress.QUIET), (["--verbose"], progress.VERBOSE)):
        parser.parse_args(argv + flags)
        assert progress.verbosity() == level


def test_a_ray_data_run_prints_one_line_named_by_its_stage_not_rays_logs(ray_session, capsys, monkeypatch,
                                                                          verbosity_restored):
    monkeypatch.setattr(progress.stage_progress_class(), "MIN_SHOWN_S", 0)  # this small pass may take under 1 s
    progress.set_verbosity(progress.NORMAL)
    init_ray(RayConfig())
    with progress.stage("score documents", "documents"):
        run_pipeline(ray_session)
    run_pipeline(ray_session)  # a pass no stage named
    with progress.stage("count the factory's documents", None):  # rows that mean nothing to a user: not shown
        ray_session.data.range(60, override_num_blocks=3).map_batches(lambda batch: batch).count()
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3, out
    assert out[0].startswith("score documents: 60 documents, ") and out[0].endswith("s"), out
    assert out[1].startswith("working: 60 rows, "), out  # never an operator's or a function's name
    assert out[2].startswith("count the factory's documents, ") and "rows" not in out[2], out


def test_quiet_prints_no_progress(ray_session, capsys, verbosity_restored):
    progress.set_verbosity(progress.QUIET)
    init_ray(RayConfig())
    run_pipeline(ray_session)
    assert capsys.readouterr().out == ""


class Toy(StrictModel):
    output_dir: str


def publish(config: Toy, overwrite: bool = False) -> None:
    """A job's skeleton, through the run kit every job publishes with."""
    run = PublishedRun(config.output_dir, config, "toy run", overwrite=overwrite)
    if not run.finished:
        with run.writing([]) as partial:
            (partial / "data.txt").write_text("x")


def crash_then_publish_twice(tmp_path) -> None:
    """A crashed run's leftovers, removed by the next run (a progress line), then the same run again (its whole
    outcome: "nothing to do")."""
    config = Toy(output_dir=str(tmp_path / "out"))
    run = PublishedRun(config.output_dir, config, "toy run")
    with pytest.raises(RuntimeError):
        with run.writing([]):
            raise RuntimeError("crash")
    publish(config)
    publish(config)


@pytest.mark.parametrize("level, shown", [(progress.NORMAL, ["removed unfinished output", "nothing to do"]),
                                          (progress.QUIET, ["nothing to do"])])
def test_quiet_prints_only_the_summary(tmp_path, capsys, verbosity_restored, level, shown):
    progress.set_verbosity(level)
    crash_then_publish_twice(tmp_path)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(shown) and all(s in line for s, line in zip(shown, out)), out


def test_a_block_takes_every_line_whatever_the_verbosity(tmp_path, capsys, verbosity_restored):
    """What the review app's export page and the tests see: the lines the default verbosity prints, not on stdout."""
    progress.set_verbosity(progress.QUIET)
    lines: list[str] = []
    with progress.lines_to(lines.append):
        crash_then_publish_twice(tmp_path)
    assert capsys.readouterr().out == ""
    assert "removed unfinished output of an earlier crashed run" in lines[0] and "nothing to do" in lines[1]
    assert len(lines) == 2
