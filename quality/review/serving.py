"""One app process serves a review database. Two would each hand out leases and show progress from their own
view of the queue; the command-line tools beside the app are fine (every write is its own transaction).

The claim is an exclusive ``flock`` on ``<db>.serving``, a file beside the database, never on the database
itself (any descriptor of the database that this process closed would drop SQLite's locks on it). The kernel
releases it when the process ends, however it ends: a killed app leaves no stale claim."""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import IO

from core.errors import ConfigError


def claim_serving(db: str | Path, url: str) -> IO:
    """Holds ``db`` for this process while the returned file stays open; ConfigError (exit 2) when another
    process serves it."""
    claim = Path(f"{db}.serving")
    handle = claim.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConfigError(f"--db: {db} is already served by {holder}; one app process serves a database: "
                          "send the annotators there, or stop it first") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"the review app at {url} (pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
    handle.flush()
    return handle
