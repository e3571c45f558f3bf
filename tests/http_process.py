"""A server the tests start as its own process (``review serve``, ``transformers serve``), waited on until it
answers over HTTP, failing with its log when it exits or stays silent."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx


def wait_for_http(process: subprocess.Popen, url: str, log: Path, what: str, timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    while True:
        assert process.poll() is None, f"{what} exited {process.returncode}: {log.read_text()[-3000:]}"
        assert time.time() < deadline, f"{what} did not answer in {timeout_s:.0f} s: {log.read_text()[-3000:]}"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
