"""benchmarks/fetch_data.py on tiny files: copy from a mirror, verify, build from sources, fail clearly offline."""
from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "fetch_data.py"
SHA = "0" * 40  # a commit id in the manifest; the tests' sources are local files


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=REPO)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(tmp_path: Path, files: dict, url: str = "http://127.0.0.1:9/{repo}/{commit}/{path}") -> Path:
    manifest = tmp_path / "sources.yaml"
    manifest.write_text(yaml.safe_dump({
        "download": {"url": url, "timeout_s": 5},
        "writer": {"compression": "zstd", "compression_level": 9},
        "files": files,
    }))
    return manifest


def entry(path: Path | None, sha: str | None = None, builder=None, sources=None) -> dict:
    return {"sha256": sha or sha256(path), "bytes": path.stat().st_size if path else 1, "data_md": "1",
            "license": "MIT", "builder": builder,
            "sources": sources or [{"repo": "owner/name", "commit": SHA, "path": "data.csv"}]}


def test_copies_from_a_mirror_then_check_finds_a_changed_file(tmp_path):
    mirror, dest = tmp_path / "mirror", tmp_path / "dest"
    mirror.mkdir()
    pq.write_table(pa.table({"text": ["a", "b"]}), mirror / "one.parquet")
    pq.write_table(pa.table({"text": ["c"]}), mirror / "two.parquet")
    manifest = write_manifest(tmp_path, {n: entry(mirror / n) for n in ("one.parquet", "two.parquet")})

    done = run("--manifest", manifest, "--dest", dest, "--from", mirror)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [f"one.parquet: copied from {mirror}", f"two.parquet: copied from {mirror}"]
    assert (dest / "one.parquet").read_bytes() == (mirror / "one.parquet").read_bytes()

    assert run("--manifest", manifest, "--dest", dest, "--check").stdout.splitlines() == [
        "one.parquet: ok", "two.parquet: ok"]
    pq.write_table(pa.table({"text": ["a", "B"]}), dest / "two.parquet")
    checked = run("--manifest", manifest, "--dest", dest, "--check")
    assert checked.returncode == 1
    assert checked.stdout.splitlines()[0] == "one.parquet: ok"
    assert checked.stdout.splitlines()[1].startswith("two.parquet: FAILED: checksum mismatch: sha256 ")


def test_a_mirror_copy_with_the_wrong_checksum_is_not_kept(tmp_path):
    mirror, dest = tmp_path / "mirror", tmp_path / "dest"
    mirror.mkdir()
    pq.write_table(pa.table({"text": ["a"]}), mirror / "one.parquet")
    manifest = write_manifest(tmp_path, {"one.parquet": entry(mirror / "one.parquet", sha="f" * 64)})
    done = run("--manifest", manifest, "--dest", dest, "--from", mirror)
    assert done.returncode == 1
    assert "one.parquet: FAILED: checksum mismatch" in done.stdout
    assert not (dest / "one.parquet").exists()
    missing = run("--manifest", manifest, "--dest", dest, "--check")
    assert missing.returncode == 1 and f"one.parquet: FAILED: missing from {dest}" in missing.stdout


def test_builds_from_source_files_and_the_checksum_proves_the_build(tmp_path):
    """The download path through a file:// source mirror: two MMLU CSVs become one table, in manifest order."""
    src = tmp_path / "src" / "owner" / "mmlu" / SHA / "data"
    (src / "test").mkdir(parents=True)
    (src / "dev").mkdir()
    (src / "test" / "anatomy_test.csv").write_text('What is 1+1?,1,2,3,"4, or more",B\nPick C,a,b,c,d,C\n')
    (src / "dev" / "anatomy_dev.csv").write_text("Pick A,x,y,z,w,A\n")
    expected = pa.table({
        "subject": ["anatomy"] * 3,
        "question": ["What is 1+1?", "Pick C", "Pick A"],
        "choices": [["1", "2", "3", "4, or more"], ["a", "b", "c", "d"], ["x", "y", "z", "w"]],
        "answer": pa.array([1, 2, 0], pa.int64()),
        "split": ["test", "test", "dev"],
    })
    pq.write_table(expected, tmp_path / "expected.parquet", compression="zstd", compression_level=9)
    sources = [{"repo": "owner/mmlu", "commit": SHA, "path": f"data/{s}/anatomy_{s}.csv"} for s in ("test", "dev")]
    manifest = write_manifest(tmp_path, {"mmlu.parquet": entry(tmp_path / "expected.parquet", builder="mmlu",
                                                               sources=sources)},
                              url=f"file://{tmp_path}/src/{{repo}}/{{commit}}/{{path}}")
    dest = tmp_path / "dest"
    done = run("--manifest", manifest, "--dest", dest)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == "mmlu.parquet: fetched: built from 2 source file(s) with mmlu\n"
    assert pq.read_table(dest / "mmlu.parquet").equals(expected)


def test_offline_download_names_the_url_and_the_way_out(tmp_path):
    manifest = write_manifest(tmp_path, {"one.parquet": entry(None, sha="a" * 64, builder="alpaca")})
    done = run("--manifest", manifest, "--dest", tmp_path / "dest")
    assert done.returncode == 1
    line = done.stdout.strip()
    assert line.startswith("one.parquet: FAILED: cannot download http://127.0.0.1:9/owner/name/" + SHA + "/data.csv")
    assert "--from DIR" in line


def test_the_shipped_manifest_loads_and_matches_data_md():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from fetch_data import MANIFEST, load_manifest
    finally:
        sys.path.pop(0)
    files = load_manifest(MANIFEST).files
    headings = [line for line in (REPO / "benchmarks" / "DATA.md").read_text().splitlines() if line.startswith("## ")]
    assert set(files) == {name for line in headings for name in re.findall(r"`([\w.]+\.parquet)`", line)}


def test_preference_pairs_share_the_prompt_up_to_the_last_assistant_turn(tmp_path):
    """Orca rows as they are; hh-rlhf cut at `chosen`'s last assistant turn, a pair without that shared prompt
    skipped, and only the first hh_lines lines read."""
    src = tmp_path / "src" / "o" / "r" / SHA
    src.mkdir(parents=True)
    (src / "orca.jsonl").write_text(json.dumps({
        "input": {"messages": [{"role": "system", "content": "Be good."}, {"role": "user", "content": "Q?"}]},
        "preferred_output": [{"role": "assistant", "content": "good"}],
        "non_preferred_output": [{"role": "assistant", "content": "bad"}]}) + "\n")
    hh = [{"chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: joke?\n\nAssistant: A pun.",
           "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: joke?\n\nAssistant: No."},
          {"chosen": "\n\nHuman: x\n\nAssistant: y", "rejected": "\n\nHuman: z\n\nAssistant: y"},
          {"chosen": "\n\nHuman: past the cap\n\nAssistant: a", "rejected": "\n\nHuman: past the cap\n\nAssistant: b"}]
    (src / "hh.jsonl.gz").write_bytes(gzip.compress("\n".join(map(json.dumps, hh)).encode()))
    expected = pa.table({
        "prompt": ["Q?", "Human: hi\n\nAssistant: hello\n\nHuman: joke?\n\nAssistant:"],
        "chosen": ["good", "A pun."], "rejected": ["bad", "No."],
        "source": ["orca_dpo_pairs", "hh-rlhf-harmless-base"]})
    pq.write_table(expected, tmp_path / "expected.parquet", compression="zstd", compression_level=9)
    sources = [{"repo": "o/r", "commit": SHA, "path": p} for p in ("orca.jsonl", "hh.jsonl.gz")]
    manifest = write_manifest(
        tmp_path, {"pairs.parquet": {**entry(tmp_path / "expected.parquet", builder="preference", sources=sources),
                                     "builder_args": {"hh_lines": 2}}},
        url=f"file://{tmp_path}/src/{{repo}}/{{commit}}/{{path}}")
    done = run("--manifest", manifest, "--dest", tmp_path / "dest")
    assert done.returncode == 0, done.stdout + done.stderr
    assert pq.read_table(tmp_path / "dest" / "pairs.parquet").equals(expected)
