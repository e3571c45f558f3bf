"""The README's cluster path: ``ray job submit --working-dir ... -- python -m factory run CONFIG``
against a real ``ray start --head`` cluster gives the same documents as a local run."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest
from conftest import PARAGRAPHS, REPO, jsonl_source, parquet_source, subprocess_env, write_config, write_jsonl, write_parquet

RAY = Path(sys.executable).parent / "ray"


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_for_dashboard(url: str, token: str, process: subprocess.Popen, temp_dir: Path, timeout: float = 180):
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(f"{url}/api/version", headers={"Authorization": f"Bearer {token}"})
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"ray start exited with {process.returncode}:\n{process.stdout.read()[-5000:]}\n"
                        f"{ray_logs(temp_dir)}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    pytest.fail(f"the Ray dashboard at {url} did not answer within {timeout} s\n{ray_logs(temp_dir)}")


def ray_logs(temp_dir: Path) -> str:
    """The tail of the dashboard and job logs, to say why a cluster or a job failed."""
    parts = []
    for log in sorted(temp_dir.glob("session_latest/logs/*")):
        if log.is_file() and any(key in log.name for key in ("dashboard", "job", "raylet.err", "gcs_server.err")):
            parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}")
    return "\n".join(parts)


def stop_cluster(process: subprocess.Popen, temp_dir: Path) -> None:
    """Stop this test's cluster only. (``ray stop`` would also kill the session's local Ray and any
    other Ray on the machine, so the processes are ended by their id.)"""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # `ray start --block` shuts down what it started
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    leftovers = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(str(temp_dir) in part for part in proc.info["cmdline"] or []):
                leftovers.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    for proc in leftovers:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(leftovers, timeout=30)


def documents(output_dir: Path) -> list[tuple[str, str]]:
    table = pq.read_table(output_dir / "documents", columns=["id", "text"])
    return sorted(zip(table["id"].to_pylist(), table["text"].to_pylist()))


def rejects(output_dir: Path) -> list[tuple[str, str, str]]:
    table = pq.read_table(output_dir / "rejects", columns=["id", "stage", "reason"])
    return sorted(zip(*(table[c].to_pylist() for c in ("id", "stage", "reason"))))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ray_job_submit_matches_a_local_run(tmp_path, run_factory):
    # the job's working directory: the factory package, the crafted data and a config with relative paths
    job_dir = tmp_path / "job"
    shutil.copytree(REPO / "factory", job_dir / "factory",
                    ignore=shutil.ignore_patterns("__pycache__", "sample_data", "*.pyc"))
    papers = {"p-1": PARAGRAPHS[0], "p-2": PARAGRAPHS[1], "p-3": PARAGRAPHS[1], "p-4": "", "p-5": PARAGRAPHS[2]}
    write_parquet(job_dir / "data" / "papers.parquet", {"id": list(papers), "text": list(papers.values())})
    write_jsonl(job_dir / "data" / "news.jsonl", [
        {"doc_id": "n-1", "body": PARAGRAPHS[3]},
        {"doc_id": "n-0", "body": PARAGRAPHS[0]},
        "not json",
    ])

    def sources(root: str) -> list[dict]:
        return [parquet_source("papers", f"{root}data/papers.parquet"), jsonl_source("news", f"{root}data/news.jsonl")]

    write_config(job_dir / "config.yaml", sources=sources(""), output_dir="out/never-used")
    local_config = write_config(tmp_path / "local.yaml", sources=sources(f"{job_dir}/"), output_dir=tmp_path / "local")
    job_out = tmp_path / "job-out"

    # Ray's socket paths must stay short: its temp dir goes directly under /tmp
    temp_dir = Path(tempfile.mkdtemp(prefix="rj-", dir="/tmp"))
    gcs_port, dashboard_port, agent_port, client_port = free_ports(4)
    token = uuid.uuid4().hex
    env = subprocess_env(
        PATH=f"{RAY.parent}{os.pathsep}{os.environ.get('PATH', '')}",  # the job's `python` is this venv's
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=token,
        RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",  # no Serve to drain: SIGTERM tears the cluster down at once
    )
    head = subprocess.Popen(
        [str(RAY), "start", "--head", "--block", f"--port={gcs_port}", "--num-cpus=2",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
         f"--dashboard-agent-listen-port={agent_port}", f"--ray-client-server-port={client_port}",
         f"--temp-dir={temp_dir}", "--disable-usage-stats"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
    )
    address = f"http://127.0.0.1:{dashboard_port}"
    try:
        wait_for_dashboard(address, token, head, temp_dir)
        job = subprocess.run(
            [str(RAY), "job", "submit", "--address", address, "--working-dir", str(job_dir), "--",
             "python", "-m", "factory", "run", "config.yaml", "--output-dir", str(job_out)],
            env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )
        assert job.returncode == 0, f"{job.stdout[-5000:]}\n{job.stderr[-5000:]}\n{ray_logs(temp_dir)}"
        assert "succeeded" in job.stdout + job.stderr
        assert "exact_dedup" in job.stdout  # the driver's funnel, tailed back by ray job submit
    finally:
        stop_cluster(head, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)

    assert (job_out / "manifest.json").is_file()
    assert not (job_dir / "out").exists()
    local = run_factory(local_config)
    assert documents(job_out) == documents(local.output_dir)
    assert rejects(job_out) == rejects(local.output_dir)
    # the crafted duplicates and bad rows did reach the comparison
    assert {doc_id for doc_id, _ in documents(job_out)} == {"p-2", "p-5", "n-0", "n-1"}
    assert {(doc_id, stage) for doc_id, stage, _ in rejects(job_out)} == {
        ("p-1", "exact_dedup"), ("p-3", "exact_dedup"), ("p-4", "validate"), ("news.jsonl:3", "read"),
    }
