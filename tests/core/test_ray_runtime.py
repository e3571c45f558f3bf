"""init_ray: the Ray a job starts gives its workers the configured Arrow allocator (mimalloc kept freed
memory: two factory workers held 4 GB on 50k abstracts), and a job's own environment wins over the config."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO, subprocess_env
from core.ray_runtime import RayConfig, worker_env

WORKER_POOL = """
import ray
from core.ray_runtime import RayConfig, init_ray

init_ray(RayConfig(num_cpus=1, arrow_memory_pool={pool!r}))

@ray.remote(num_cpus=1)
def backend():
    import pyarrow as pa
    return pa.default_memory_pool().backend_name

print("BACKEND", ray.get(backend.remote()))
"""


@pytest.mark.slow
def test_a_job_started_ray_gives_its_workers_the_configured_arrow_allocator():
    proc = subprocess.run([sys.executable, "-c", WORKER_POOL.format(pool="jemalloc")], cwd=REPO, capture_output=True,
                          text=True, timeout=180, env=subprocess_env())
    assert "BACKEND jemalloc" in proc.stdout, proc.stdout + proc.stderr[-3000:]


def test_the_jobs_own_environment_wins_over_the_config(monkeypatch):
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    assert worker_env(RayConfig()) == {"ARROW_DEFAULT_MEMORY_POOL": "jemalloc"}  # the default
    assert worker_env(RayConfig(arrow_memory_pool=None)) == {}  # Arrow's own default
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")  # e.g. set in ray job submit's runtime env
    assert worker_env(RayConfig()) == {}
