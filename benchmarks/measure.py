"""What the benchmarks share: run a command and record its wall time and the peak RSS of its process tree."""
from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path


def peak_rss_of(command: list[str], cwd: Path, ok_codes: tuple[int, ...] = (0,)) -> tuple[float, int, str]:
    """Run ``command``; return (wall seconds, peak RSS bytes of its process tree, output)."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]

    def sample():
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                procs = [root] + root.children(recursive=True)
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    output, _ = proc.communicate()
    thread.join()
    if proc.returncode not in ok_codes:
        raise RuntimeError(f"{command} failed:\n{output[-4000:]}")
    return time.perf_counter() - start, peak[0], output
