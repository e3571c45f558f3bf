"""The review app's command line run as a user runs it: each command its own process, ``review serve`` a
server process (killed or stopped by its pid), and the database read by an outside process's ``sqlite3``."""
from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import REPO, subprocess_env
from http_process import wait_for_http
from ray_cluster import free_ports


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "quality", *args], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, f"quality {' '.join(args)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def outside_count(db: Path) -> int:
    """Decisions as a process the app does not know of sees them: open, count, close."""
    with sqlite3.connect(db, timeout=60) as outside:
        count = outside.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
    outside.close()
    return count


def outside_decisions(db: Path) -> dict[tuple[str, str], str]:
    outside = sqlite3.connect(db, timeout=60)
    try:
        return {(item, name): decision for item, name, decision in outside.execute(
            "SELECT d.item_id, a.name, d.decision FROM decisions d JOIN annotators a ON a.id = d.annotator_id")}
    finally:
        outside.close()


class Server:
    """``python -m quality review serve`` as its own process."""

    def __init__(self, db: Path, export_out: Path, log: Path):
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "quality", "review", "serve", "--db", str(db), "--port", str(self.port),
             "--export-out", str(export_out)], cwd=REPO, env=subprocess_env(), stdout=self.log, stderr=self.log)
        wait_for_http(self.process, f"{self.url}/login", log, "review serve", timeout_s=60)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        self.log.close()


def set_up(db: Path, annotators: dict[str, bool], preferences_dir: Path, overlap: int) -> dict[str, str]:
    """``annotators add`` each of {name: is_admin} and ``review load``; returns each annotator's login token."""
    tokens = {}
    for name, admin in annotators.items():
        added = cli("annotators", "add", name, *(["--admin"] if admin else []), "--db", str(db))
        tokens[name] = added.stdout.strip().rsplit(" ", 1)[-1]
    cli("review", "load", str(preferences_dir), "--db", str(db), "--overlap", str(overlap))
    return tokens


def listed_votes(db: Path) -> dict[str, dict[str, int]]:
    """``annotators list`` parsed: {name: {decision: count}}."""
    found = {}
    for line in cli("annotators", "list", "--db", str(db)).stdout.splitlines():
        match = re.match(r"(\w+)(?: \(admin\))?: (\d+) votes \((.*)\)$", line)
        assert match, line
        kinds = {} if match.group(3) == "no decisions" else {
            kind: int(n) for kind, n in (part.rsplit(" ", 1) for part in match.group(3).split(", "))}
        found[match.group(1)] = kinds
    return found
