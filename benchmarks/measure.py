"""What the benchmarks share: run a command and record its wall time and the peak RSS of its process tree."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_of(command: list[str], cwd: Path, ok_codes: tuple[int, ...] = (0,)) -> tuple[float, int, str]:
    """Run ``command``; return (wall seconds, peak RSS bytes of its process tree, output)."""
    wall, peaks, output = peak_rss_by_process(command, cwd, ok_codes)
    return wall, peaks["tree"], output


def peak_rss_by_process(command: list[str], cwd: Path, ok_codes: tuple[int, ...] = (0,),
                        pss_every_s: float = 1.0) -> tuple[float, dict, str]:
    """Run ``command``; return (wall seconds, peak bytes of {"driver": the command's own RSS, "tree": the RSS
    summed over its process tree, "tree_pss": the same with PSS, "pss_at_peak": {process title: (count, PSS
    bytes)} when tree_pss peaked}, output). RSS is sampled every 0.2 s; PSS every ``pss_every_s`` (reading
    smaps_rollup costs ~3.5 ms per process: every 0.2 s it took ~20% of a core from a 13-process Ray tree, a
    tax the peer with fewer processes paid less of). Summed RSS counts shared memory once per process mapping
    it (Ray's object store, pages shared after a fork); PSS divides each shared page among its processes, so
    its sum is what the tree really holds."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = {"driver": 0, "tree": 0, "tree_pss": 0, "pss_at_peak": {}}

    def sample():
        root = psutil.Process(proc.pid)
        last_pss = 0.0
        while proc.poll() is None:
            try:
                tree = [root] + [p for p in root.children(recursive=True) if p.is_running()]
                with_pss = time.perf_counter() - last_pss >= pss_every_s
                memory = [p.memory_full_info() if with_pss else p.memory_info() for p in tree]
                now = {"driver": memory[0].rss, "tree": sum(m.rss for m in memory)}
                if with_pss:
                    last_pss = time.perf_counter()
                    now["tree_pss"] = sum(getattr(m, "pss", m.rss) for m in memory)
                    if now["tree_pss"] > peak["tree_pss"]:
                        peak["pss_at_peak"] = by_title(tree, memory)
                peak.update({key: max(peak[key], value) for key, value in now.items()})
            except psutil.Error:
                pass
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    output, _ = proc.communicate()
    thread.join()
    if proc.returncode not in ok_codes:
        raise RuntimeError(f"{command} failed:\n{output[-4000:]}")
    return time.perf_counter() - start, peak, output


def by_title(processes: list, memory: list) -> dict[str, tuple[int, int]]:
    """(count, summed PSS) per process title: Ray names its workers by what they run (``ray::IDLE``,
    ``ray::MapBatches(...)``), its daemons by their program (gcs_server, raylet)."""
    totals: dict[str, tuple[int, int]] = {}
    for process, used in zip(processes, memory):
        try:
            command = process.cmdline()
        except Exception:  # gone since it was sampled
            continue
        title = command[0].split("/")[-1].split(" ")[0] if command else process.name()
        title = title.split("(")[0]
        count, pss = totals.get(title, (0, 0))
        totals[title] = (count + 1, pss + getattr(used, "pss", used.rss))
    return totals


def run_facts(*packages: str) -> dict:
    """What a committed result must carry to be checked: the date (UTC), the commit measured (marked when the tree had
    uncommitted changes) and the machine, with the versions of ``packages``. The results folder does not count: a
    queue of benchmarks rewrites its files before they are committed."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":(exclude)benchmarks/results"], cwd=ROOT, capture_output=True, text=True).stdout
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": commit.strip() + ("+uncommitted" if dirty.strip() else ""),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                        **{package: importlib.metadata.version(package) for package in packages}}}
