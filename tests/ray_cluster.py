"""A real ``ray start --head`` on loopback with token authentication, for tests that submit jobs with
``ray job submit`` exactly as the README tells users to; and a head with worker nodes (``ray_cluster``), each
its own ``ray start --address`` raylet with its own temp dir, that a test can kill and replace as spot
instances and an autoscaler do (``tests/cluster/``)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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
    kill_all(leftovers)


def kill_all(processes: list[psutil.Process]) -> None:
    """SIGKILL each process (one already gone is fine) and wait until they are all gone."""
    for proc in processes:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(processes, timeout=30)


@dataclass
class RayHead:
    address: str
    env: dict
    temp_dir: Path
    gcs_port: int

    def submit(self, working_dir: Path, *command: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """``ray job submit --working-dir DIR -- COMMAND``, waiting for the job; its logs come back on stdout."""
        return subprocess.run(self._submit_command(working_dir, command), env=self.env, capture_output=True,
                              text=True, timeout=timeout, cwd=working_dir.parent)

    def submit_in_background(self, working_dir: Path, *command: str, in_place: bool = False) -> "BackgroundJob":
        """``ray job submit`` as ``submit`` does, without waiting: the test acts on the job's output as it comes.
        ``in_place``: the job runs in ``working_dir`` itself (``local://``, a folder every node has), not uploaded."""
        return BackgroundJob(subprocess.Popen(
            self._submit_command(f"local://{working_dir}" if in_place else working_dir, command),
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=working_dir.parent,
        ))

    def _submit_command(self, working_dir: Path | str, command: tuple[str, ...]) -> list[str]:
        return [str(RAY), "job", "submit", "--address", self.address, "--working-dir", str(working_dir), "--",
                *command]

    def failure(self, job: subprocess.CompletedProcess) -> str:
        return f"{job.stdout[-6000:]}\n{job.stderr[-4000:]}\n{ray_logs(self.temp_dir)}"

    def nodes(self) -> list[dict]:
        """The cluster's nodes as the dashboard's state API lists them (what ``ray list nodes`` reads)."""
        return self.listed("nodes")

    def actors(self) -> list[dict]:
        """The cluster's actors, dead ones too, as ``ray list actors --detail`` shows them (node_id, class_name)."""
        return self.listed("actors")

    def listed(self, kind: str) -> list[dict]:
        request = urllib.request.Request(f"{self.address}/api/v0/{kind}?limit=10000&detail=true",
                                         headers={"Authorization": f"Bearer {self.env['RAY_AUTH_TOKEN']}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)["data"]["result"]["result"]


class BackgroundJob:
    """A process running while the test acts (a ``ray job submit``, a job's own driver): its output (stdout and
    stderr) read as it comes."""

    def __init__(self, process: subprocess.Popen):
        self.process, self.lines = process, []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def running(self) -> bool:
        return self.process.poll() is None

    def finish(self, timeout: float = 600) -> subprocess.CompletedProcess:
        """Wait for the job; its exit status and output as ``RayHead.submit`` gives them (stderr in stdout)."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"the job did not end within {timeout} s:\n{self.output[-6000:]}")
        self.reader.join(timeout=30)
        return subprocess.CompletedProcess(self.process.args, self.process.returncode, self.output, "")


def short_temp_dir() -> Path:
    # Ray's socket paths must stay short: its temp dir goes directly under /tmp
    return Path(tempfile.mkdtemp(prefix="rj-", dir="/tmp"))


@contextmanager
def ray_head(cwd: Path, num_cpus: int = 2, object_store_memory: int | None = None, gcs_port: int | None = None,
             extra_args: tuple[str, ...] = (), **ray_env: str):
    """A head node of ``num_cpus`` CPUs on loopback, token auth on, stopped (only it) at the end; ``extra_args``
    go to its ``ray start``."""
    temp_dir = short_temp_dir()
    dashboard_port, agent_port, client_port = free_ports(3)
    gcs_port = gcs_port or free_ports(1)[0]
    token = uuid.uuid4().hex
    env = subprocess_env(
        PATH=f"{RAY.parent}{os.pathsep}{os.environ.get('PATH', '')}",  # the job's `python` is this venv's
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=token,
        RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",  # no Serve to drain: SIGTERM tears the cluster down at once
        **ray_env,
    )
    head = subprocess.Popen(
        [str(RAY), "start", "--head", "--block", f"--port={gcs_port}", f"--num-cpus={num_cpus}",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
         f"--dashboard-agent-listen-port={agent_port}", f"--ray-client-server-port={client_port}",
         f"--temp-dir={temp_dir}", "--disable-usage-stats", *store_size(object_store_memory), *extra_args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd,
    )
    address = f"http://127.0.0.1:{dashboard_port}"
    try:
        wait_for_dashboard(address, token, head, temp_dir)
        yield RayHead(address, env, temp_dir, gcs_port)
    finally:
        stop_cluster(head, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def store_size(object_store_memory: int | None) -> list[str]:
    return [f"--object-store-memory={object_store_memory}"] if object_store_memory else []


@dataclass
class WorkerNode:
    """One ``ray start --address ... --block`` worker node: its own raylet, temp dir and CPUs."""

    node_id: str
    process: subprocess.Popen
    temp_dir: Path


class RayCluster:
    """A head that only runs drivers (0 CPUs: every task and actor lands on a worker node) and worker nodes of
    1 CPU each, so a killed worker always holds part of the job's work, and 2 cores carry the whole cluster."""

    def __init__(self, head: RayHead, cwd: Path, object_store_memory: int):
        self.head, self.cwd, self.object_store_memory = head, cwd, object_store_memory
        self.nodes: list[WorkerNode] = []  # every worker node started, killed ones too: stop() sweeps them all

    def add_node(self, timeout: float = 120, attempts: int = 3) -> WorkerNode:
        """A new worker node joining the cluster, as an autoscaler adds one; returned once the cluster lists it
        alive. (Its id is found by a resource only it has, as every node here has the same IP.) A ``ray start``
        that gives up while joining (it waits 30 s, hard-coded, for its raylet to register: too short on a
        loaded machine) is swept away and started again, as an autoscaler replaces a node that failed to boot."""
        for attempt in range(1, attempts + 1):
            name = f"drill_worker_{len(self.nodes)}_{attempt}"
            temp_dir = short_temp_dir()
            process = subprocess.Popen(
                [str(RAY), "start", f"--address=127.0.0.1:{self.head.gcs_port}", "--block", "--num-cpus=1",
                 f"--resources={json.dumps({name: 1})}", f"--temp-dir={temp_dir}", "--disable-usage-stats",
                 *store_size(self.object_store_memory)],
                env=self.head.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.cwd,
            )
            node = self._joined(name, process, temp_dir, timeout)
            if node is not None:
                self.nodes.append(node)
                return node
            said = process.stdout.read()[-5000:]
            stop_cluster(process, temp_dir)  # a raylet it left behind must not join later
            shutil.rmtree(temp_dir, ignore_errors=True)
        pytest.fail(f"ray start --address exited with {process.returncode}, {attempts} times; the last said:\n{said}")

    def _joined(self, name: str, process: subprocess.Popen, temp_dir: Path, timeout: float) -> WorkerNode | None:
        """The node once the cluster lists it alive; None if its ``ray start`` exited first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return None
            try:
                nodes = self.head.nodes()
            except (urllib.error.URLError, ConnectionError, TimeoutError):  # a loaded dashboard drops a request
                nodes = []
            mine = [n for n in nodes if n["state"] == "ALIVE" and name in n.get("resources_total", {})]
            if mine:
                return WorkerNode(mine[0]["node_id"], process, temp_dir)
            time.sleep(0.5)
        stop_cluster(process, temp_dir)
        pytest.fail(f"a worker node did not join the cluster within {timeout} s\n{ray_logs(temp_dir)}")

    def kill_node(self, node: WorkerNode) -> None:
        """The node dies as a reclaimed spot instance does: SIGKILL to its ``ray start``, its raylet and every
        process under it (the job's workers there), all at once, nothing shut down cleanly."""
        try:
            tree = [psutil.Process(node.process.pid)]
            tree += tree[0].children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        kill_all(tree)
        node.process.wait(timeout=30)

    def stop(self) -> None:
        for node in self.nodes:
            stop_cluster(node.process, node.temp_dir)
            shutil.rmtree(node.temp_dir, ignore_errors=True)


# the GCS declares a silent node dead after 5 missed health checks, 3 s apart by default; 1 s apart here, so
# the drills wait less for it (what the job does once the node is declared dead is unchanged)
DEATH_NOTICED_SOON = {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000"}


@contextmanager
def ray_cluster(cwd: Path, workers: int = 2, object_store_memory: int = 200 << 20, **env: str):
    """A head (drivers only) and ``workers`` worker nodes of 1 CPU on loopback, every process started with the
    variables ``env``; every node stopped by its own process ids at the end, the killed ones included."""
    with ray_head(cwd, num_cpus=0, object_store_memory=object_store_memory, **DEATH_NOTICED_SOON, **env) as head:
        cluster = RayCluster(head, cwd, object_store_memory)
        try:
            for _ in range(workers):
                cluster.add_node()
            yield cluster
        finally:
            cluster.stop()
