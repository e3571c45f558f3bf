"""A real ``ray start --head`` on loopback with token authentication, for tests that submit jobs with
``ray job submit`` exactly as the README tells users to."""
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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from conftest import subprocess_env

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


@dataclass
class RayHead:
    address: str
    env: dict
    temp_dir: Path

    def submit(self, working_dir: Path, *command: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """``ray job submit --working-dir DIR -- COMMAND``, waiting for the job; its logs come back on stdout."""
        return subprocess.run(
            [str(RAY), "job", "submit", "--address", self.address, "--working-dir", str(working_dir), "--", *command],
            env=self.env, capture_output=True, text=True, timeout=timeout, cwd=working_dir.parent,
        )

    def failure(self, job: subprocess.CompletedProcess) -> str:
        return f"{job.stdout[-6000:]}\n{job.stderr[-4000:]}\n{ray_logs(self.temp_dir)}"


@contextmanager
def ray_head(cwd: Path, num_cpus: int = 2):
    """A head node of ``num_cpus`` CPUs on loopback, token auth on, stopped (only it) at the end."""
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
        [str(RAY), "start", "--head", "--block", f"--port={gcs_port}", f"--num-cpus={num_cpus}",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
         f"--dashboard-agent-listen-port={agent_port}", f"--ray-client-server-port={client_port}",
         f"--temp-dir={temp_dir}", "--disable-usage-stats"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd,
    )
    address = f"http://127.0.0.1:{dashboard_port}"
    try:
        wait_for_dashboard(address, token, head, temp_dir)
        yield RayHead(address, env, temp_dir)
    finally:
        stop_cluster(head, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
