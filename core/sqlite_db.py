"""Opening the SQLite files users create (the review database, the LLM answer caches), and the rules that keep
them safe beside other processes.

SQLite coordinates processes with POSIX advisory locks, and closing *any* descriptor of a file drops every
such lock the process holds on it (SQLite's "How To Corrupt An SQLite Database File", 2.2). A process that
holds a connection and then opens the file another way (to hash, copy or move it) leaves its connections
unlocked: the next process to open and close the database believes it was the last one, checkpoints the
write-ahead log and deletes it, and the first process goes on committing into a deleted file. So:

* every connection is opened here, and the file is remembered as live in this process;
* ``refuse_if_live`` is the guard for code that opens files by path (``core.manifest.file_fingerprint``);
* what a database holds is described from inside SQLite, never by hashing its bytes;
* a database on a filesystem whose locks do not reach every process (NFS, SMB, FUSE) is refused.
"""
from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

from core.errors import ConfigError

OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")

# (device, inode) of every SQLite file this process has connected to: its connections hold locks on it
_LIVE: set[tuple[int, int]] = set()

# filesystems whose advisory locks do not hold between processes, or between machines sharing the file, and
# which cannot give WAL its shared memory: SQLite's own documentation advises against each of them
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "lustre", "afs", "davfs",
                       "ncpfs", "ocfs2", "gfs2", "beegfs", "gpfs", "fuse", "fuseblk"}


def connect(path: str | Path, *, synchronous: str) -> sqlite3.Connection:
    """A connection in WAL mode with a 60 s busy wait and autocommit (transactions are explicit);
    ``synchronous`` FULL: a commit is on disk when it returns; NORMAL: it survives a killed process, and only an
    operating-system crash may lose the last commits."""
    connection = sqlite3.connect(str(path), timeout=60, isolation_level=None, check_same_thread=False)
    stat = os.stat(path)
    _LIVE.add((stat.st_dev, stat.st_ino))
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"PRAGMA synchronous={synchronous}")
    return connection


def refuse_if_live(path: str | Path) -> None:
    """Raises before ``path`` is opened outside SQLite when this process holds connections to it."""
    try:
        stat = os.stat(path)
    except OSError:
        return
    if (stat.st_dev, stat.st_ino) in _LIVE:
        raise RuntimeError(f"{path} is an SQLite database this process has open: opening it any other way would "
                           "drop SQLite's locks on it (describe it from inside SQLite instead)")


def filesystem_type(path: str | Path, mountinfo: str | None = None) -> tuple[str, str] | None:
    """(filesystem type, mount point) of the filesystem ``path`` is on (or would be created on), from the
    kernel's mount table (``/proc/self/mountinfo``); None where there is no such table (not Linux)."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return None
    target = Path(path).resolve()  # links followed as far as the path exists (a database not created yet)
    best: tuple[str, str] | None = None
    for line in mountinfo.splitlines():
        fields, _, after = line.partition(" - ")
        parts = fields.split()
        if len(parts) < 5 or not after:
            continue
        mount_point = OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), parts[4])  # a space is written \040
        if target == Path(mount_point) or Path(mount_point) in target.parents:
            if best is None or len(mount_point) >= len(best[1]):  # the last of equal mounts is the one on top
                best = (after.split()[0], mount_point)
    return best


def refuse_network_filesystem(path: str | Path, key: str, advice: str, mountinfo: str | None = None) -> None:
    """ConfigError (exit 2) when ``path`` is on a filesystem where SQLite's locks do not hold; ``advice``: where
    to keep it instead. ``mountinfo``: the mount table to read (default the kernel's)."""
    found = filesystem_type(path, mountinfo)
    if found is None:
        return
    kind, mount_point = found
    if kind in NETWORK_FILESYSTEMS or kind.startswith("fuse."):
        raise ConfigError(f"{key}: {path} is on a {kind} filesystem (mounted at {mount_point}), where SQLite's file "
                          f"locks do not hold between processes and what it stores could be lost; {advice}")
