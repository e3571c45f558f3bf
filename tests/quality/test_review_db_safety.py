"""The review database is refused where it cannot be kept safe, and described from inside SQLite: a database on
a filesystem whose locks do not hold (a real FUSE mount, as NFS, SMB and sshfs are), a second app serving the
same database, and any code of a process with open connections that would open the file another way."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
from conftest import REPO, published, subprocess_env
from review_helpers import review_store
from review_processes import Server

from core.errors import ConfigError
from core.manifest import file_fingerprint
from core.sqlite_db import filesystem_type, refuse_network_filesystem
from quality.review.export import ExportConfig, export
from quality.review.sqlite_store import SCHEMA_VERSION

MOUNTINFO = """\
22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
40 22 0:40 / /mnt/team rw,relatime - nfs4 filer:/export/team rw,vers=4.2
41 22 0:41 / /mnt/my\\040share rw,relatime - cifs //nas/share rw
42 40 8:2 / /mnt/team/local rw,relatime - ext4 /dev/sdb1 rw
"""


def test_the_filesystem_is_the_innermost_mount_holding_the_path():
    assert filesystem_type("/mnt/team/r.sqlite", MOUNTINFO) == ("nfs4", "/mnt/team")
    assert filesystem_type("/mnt/my share/reviews/r.sqlite", MOUNTINFO) == ("cifs", "/mnt/my share")
    assert filesystem_type("/mnt/team/local/r.sqlite", MOUNTINFO) == ("ext4", "/mnt/team/local")
    assert filesystem_type("/home/me/r.sqlite", MOUNTINFO) == ("ext4", "/")


def test_a_local_disk_is_accepted(tmp_path):
    refuse_network_filesystem(tmp_path / "not-yet" / "r.sqlite", "--db", "keep it local")  # no error


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quality", *args], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def fuse_folder(tmp_path):
    """(local folder, the same folder seen through a real FUSE filesystem: bindfs, which `make test` installs)."""
    assert shutil.which("bindfs"), "this test mounts a FUSE filesystem with Debian's bindfs; `make test` installs it"
    source, mounted = tmp_path / "source", tmp_path / "fuse"
    source.mkdir()
    mounted.mkdir()
    subprocess.run(["bindfs", str(source), str(mounted)], check=True, timeout=30)
    yield source, mounted
    for _ in range(20):  # a process that just exited may hold it a moment longer
        if subprocess.run(["fusermount", "-u", str(mounted)], capture_output=True).returncode == 0:
            break
        time.sleep(0.2)


def test_a_database_on_a_fuse_filesystem_is_refused_before_anything_is_written(fuse_folder):
    local, fuse = fuse_folder
    assert cli("annotators", "add", "ann", "--db", str(local / "made-locally.sqlite")).returncode == 0
    for db, args in ((fuse / "new.sqlite", ["annotators", "add", "ann"]),
                     (fuse / "made-locally.sqlite", ["review", "serve", "--port", "0"]),
                     (fuse / "made-locally.sqlite", ["review", "export", "--out", str(local / "out")])):
        done = cli(*args, "--db", str(db))
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"--db: {db} is on a fuse filesystem" in done.stderr and "local disk" in done.stderr
    assert sorted(p.name for p in local.iterdir()) == ["made-locally.sqlite"]  # no WAL, nothing exported


def test_a_second_app_on_the_same_database_is_refused_and_a_killed_one_leaves_no_claim(tmp_path):
    db = tmp_path / "r.sqlite"
    review_store(db, {"ann": False}, items=2)
    first = Server(db, tmp_path / "exports", tmp_path / "serve.log")
    second = cli("review", "serve", "--db", str(db), "--port", "0")
    assert second.returncode == 2
    assert f"{db} is already served by the review app at http://127.0.0.1:{first.port}/" in second.stderr
    first.kill()
    again = Server(db, tmp_path / "exports", tmp_path / "serve.log")  # the kernel dropped the killed app's claim
    again.stop()


def test_a_process_never_opens_its_own_live_database_by_path(tmp_path):
    store = review_store(tmp_path / "r.sqlite", {"ann": False}, items=2)
    with pytest.raises(RuntimeError, match="would drop SQLite's locks"):
        file_fingerprint(tmp_path / "r.sqlite")
    assert store.decisions() == []


def test_an_export_names_what_it_read_from_inside_sqlite_not_by_the_files_bytes(tmp_path):
    store = review_store(tmp_path / "r.sqlite", {"ann": False}, items=3)
    annotator = store.annotator_credentials("ann")[0]
    for _ in range(2):
        lease = store.next_lease(annotator, 60)
        store.submit(annotator, lease.item.id, lease.item.version, "keep", None)
    export(store, ExportConfig(db=str(tmp_path / "r.sqlite"), output_dir=str(tmp_path / "out")))
    manifest = json.loads((published(tmp_path / "out") / "manifest.json").read_text())
    assert manifest["inputs"] == []
    held = manifest["review_db"]
    assert (held["decisions"], held["items"], held["schema_version"]) == (2, 3, SCHEMA_VERSION)
    assert held["last_decision_id"] == store.db.execute("SELECT MAX(id) FROM decisions").fetchone()[0]
    assert "one SQLite read transaction" in held["read_as"]


def test_a_config_key_names_the_refused_file():
    with pytest.raises(ConfigError, match=r"^review\.db: /mnt/team/r\.sqlite is on a nfs4 filesystem .*keep it local"):
        refuse_network_filesystem("/mnt/team/r.sqlite", "review.db", "keep it local", MOUNTINFO)
    refuse_network_filesystem("/mnt/team/local/r.sqlite", "review.db", "keep it local", MOUNTINFO)  # its own disk
