"""What a job prints while Ray Data runs: by default one line per execution (rows read, rows reaching its last
operator, rate) instead of Ray's progress logs; -q leaves only the job's own summary; every job takes -v/-q."""
from __future__ import annotations

import pytest

from core import progress
from core.ray_runtime import RayConfig, init_ray


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


def test_a_ray_data_run_prints_one_line_not_rays_logs(ray_session, capsys, monkeypatch, verbosity_restored):
    monkeypatch.setattr(progress.stage_progress_class(), "MIN_SHOWN_S", 0)  # this small pass may take under 1 s
    progress.set_verbosity(progress.NORMAL)
    init_ray(RayConfig())
    run_pipeline(ray_session)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "<lambda>: 60 rows in, 60 out" in out[0], out


def test_quiet_prints_no_progress(ray_session, capsys, verbosity_restored):
    progress.set_verbosity(progress.QUIET)
    init_ray(RayConfig())
    run_pipeline(ray_session)
    assert capsys.readouterr().out == ""
