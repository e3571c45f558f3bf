"""The factory reading from and publishing to object storage vs the same run on local disk.

A loopback S3 server (moto's standalone server in a subprocess, as a user would run MinIO) behind a small
counting TCP proxy: every byte the job, its Ray tasks and the driver send to or get from the store is counted.
The input Parquet is uploaded once; then local and S3 runs alternate (local, s3, local, s3, ...), each the
factory CLI on a fresh local Ray, and the script reports the median wall time of each and the bytes moved.
The dedup scratch stays on local disk in both (storage.scratch_dir; docs/OBJECT_STORAGE.md).

moto is a single Python process: it is far slower per request than MinIO or S3, so the S3 times here are an
upper bound on the overhead of object storage, not a measurement of it.

Like benchmarks/factory_scale.py, the quality filters, ftfy, PII redaction and the gate are off (``--full``
turns them on): what differs between the two runs is the data path, which is what this measures.

    .venv/bin/python benchmarks/factory_object_storage.py [--input FILE.parquet] [--repeats 3] [--full]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_data import BENCH_DATA  # noqa: E402

BUCKET = "bench"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1",
               "AWS_EC2_METADATA_DISABLED": "true"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def moto_server():
    """moto's standalone S3 server in its own process; yields its endpoint."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("moto server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


class CountingProxy:
    """A TCP relay in front of the server counting the bytes each way (``sent``: to the store)."""

    def __init__(self, endpoint: str):
        self.target = ("127.0.0.1", int(endpoint.rsplit(":", 1)[1]))
        self.sent = self.received = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> dict:
        with self.lock:
            counted, self.sent, self.received = {"sent_mib": self.sent / 2**20,
                                                 "received_mib": self.received / 2**20}, 0, 0
        return counted

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, "sent"), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, "received"), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, direction: str) -> None:
        try:
            while data := source.recv(1 << 16):
                sink.sendall(data)
                with self.lock:
                    setattr(self, direction, getattr(self, direction) + len(data))
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def config(path: Path, source: str, output: str, scratch: Path, full: bool) -> Path:
    light = {} if full else {
        "filters": {name: {"enabled": False} for name in ("gopher_repetition", "gopher_quality", "c4", "fineweb")},
        "normalise": {"ftfy": False}, "redact": {"emails": False, "ips": False, "phones": False},
        "quality": {"gate": False}}
    path.write_text(yaml.safe_dump({
        "preset": "scientific", "output_dir": output,
        "sources": [{"name": "arxiv", "path": source, "text_column": "text", "id_column": "id", "domain": "domain"}],
        "ray": {"num_cpus": 2}, "storage": {"scratch_dir": str(scratch)}, **light}))
    return path


def run(config_path: Path, env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "factory", "run", str(config_path), "-q"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{config_path}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return wall


def manifest_of(output: str) -> dict:
    from core.publish import read_finished_manifest

    return read_finished_manifest(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, default=BENCH_DATA / "arxiv_cs_abstracts.parquet")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="the scientific preset as it is (filters, ftfy, gate)")
    parser.add_argument("--work", type=Path, default=None, help="local outputs and scratch (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "factory_object_storage.json")
    args = parser.parse_args()
    if not args.input.is_file():
        sys.exit(f"--input: {args.input} does not exist (python benchmarks/fetch_data.py arxiv_cs_abstracts.parquet)")
    work = args.work or Path(tempfile.mkdtemp(prefix="factory_object_storage_"))
    work.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    runs = []
    with moto_server() as endpoint:
        proxy = CountingProxy(endpoint)
        env = {**os.environ, **CREDENTIALS, "AWS_ENDPOINT_URL": proxy.endpoint, "PYTHONPATH": str(ROOT)}
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        import boto3

        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket=BUCKET)
        client.upload_file(str(args.input), BUCKET, f"in/{args.input.name}")
        sources = {"local": str(args.input), "s3": f"s3://{BUCKET}/in/{args.input.name}"}
        for repeat in range(args.repeats):
            for where in ("local", "s3"):  # interleaved: drift in the machine's load hits both alike
                output = str(work / f"out-{repeat}") if where == "local" else f"s3://{BUCKET}/out-{repeat}"
                path = config(work / f"{where}-{repeat}.yaml", sources[where], output, work / "scratch", args.full)
                proxy.reset()
                wall = run(path, env)
                moved = proxy.reset()
                manifest = manifest_of(output)
                runs.append({"where": where, "repeat": repeat, "wall_s": round(wall, 2), **moved,
                             "timings_s": manifest["timings_s"], "kept": manifest["outputs"]["documents"]["rows"],
                             "rejected": manifest["outputs"]["rejects"]["rows"]})
                print(json.dumps(runs[-1]), flush=True)
    medians = {where: statistics.median(r["wall_s"] for r in runs if r["where"] == where) for where in ("local", "s3")}
    same = len({(r["kept"], r["rejected"]) for r in runs}) == 1
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": commit.strip(),
        "input": args.input.name, "documents": pq.read_metadata(args.input).num_rows, "full": args.full,
        "repeats": args.repeats, "load_average": os.getloadavg(), "server": "moto (Python) on loopback",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "median_wall_s": medians, "s3_over_local": round(medians["s3"] / medians["local"], 3),
        "same_counts": same, "runs": runs,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
