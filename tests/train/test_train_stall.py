"""A training run that makes no progress fails, naming itself, instead of hanging: the stall watchdog
on the driver watches the heartbeat rank 0 writes after every step."""
from __future__ import annotations

import subprocess
import sys

import pytest
from transformers import AutoTokenizer

import train_fixtures as tf
from core.publish import current_run_dir
from conftest import REPO, subprocess_env


@pytest.mark.slow
def test_a_run_without_progress_fails_naming_the_stage(tmp_path):
    model = tf.tiny_model_dir(tmp_path / "base")
    data = tf.write_cpt(tmp_path / "data" / "part-0.parquet",
                        tf.pack(tf.documents_tokens(AutoTokenizer.from_pretrained(model)), 40), 8)
    # 2 s: Ray Train starts its workers and loads the model for longer than that, so no step finishes in time
    config = tf.write_train_config(tmp_path / "cpt.yaml", model_path=model, data_path=data.parent, root=tmp_path,
                                   name="stalls", run={"stall_timeout_s": 2})
    proc = subprocess.run([sys.executable, "-m", "train", "cpt", str(config)], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=subprocess_env(PYTHONPATH=str(REPO)))
    assert proc.returncode == 1, (proc.stdout + proc.stderr)[-4000:]
    assert "error: train cpt (run stalls): no progress for 2s (last heartbeat: no heartbeat yet)" in proc.stderr
    # the interrupt ends the fit; on a loaded machine Ray Train's teardown may outlast the 60 s grace, and the
    # forced exit that follows says so: either way the run fails with the stage named and publishes nothing
    assert current_run_dir(tmp_path / "stalls-model") is None  # nothing published: no CURRENT names the run
