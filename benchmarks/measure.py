"""What the benchmarks share: run a command and record its wall time and the peak RSS of its process tree."""
from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path


def peak_rss_of(command: list[str], cwd: Path, ok_codes: tuple[int, ...] = (0,)) -> tuple[float, int, str]:
    """Run ``command``; return (wall seconds, peak RSS bytes of its process tree, output)."""
    wall, peaks, output = peak_rss_by_process(command, cwd, ok_codes)
    return wall, peaks["tree"], output


def peak_rss_by_process(command: list[str], cwd: Path, ok_codes: tuple[int, ...] = (0,)) -> tuple[float, dict, str]:
    """Run ``command``; return (wall seconds, peak bytes of {"driver": the command's own RSS, "tree": the RSS
    summed over its process tree, "tree_pss": the same with PSS}, output), sampled every 0.2 s. Summed RSS
    counts shared memory once per process mapping it (Ray's object store, pages shared after a fork);
    PSS divides each shared page among its processes, so its sum is what the tree really holds."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = {"driver": 0, "tree": 0, "tree_pss": 0}

    def sample():
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root] + [p for p in root.children(recursive=True) if p.is_running()]
                memory = [p.memory_full_info() for p in tree]
                now = {"driver": memory[0].rss, "tree": sum(m.rss for m in memory),
                       "tree_pss": sum(getattr(m, "pss", m.rss) for m in memory)}
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
