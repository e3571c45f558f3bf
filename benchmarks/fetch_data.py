"""Fetch, build or copy the benchmark corpora into $BENCH_DATA and check each against its sha256.

benchmarks/data_sources.yaml lists every file: sha256, size, public source (GitHub repository, commit,
paths), licence, and the builder that converts the source files into it. For each file:
  present in DEST       -> its sha256 is checked                               ("ok")
  missing, --from DIR   -> copied from DIR (a local mirror), then checked      ("copied")
  missing, no --from    -> its source files are downloaded at their pinned commit and the file built
                           with its builder (benchmarks/data_builders.py), then checked ("fetched")
  --check               -> only checks; a missing file is an error
A checksum mismatch, a missing file or a failed download prints the file and the reason and ends with
exit 1; a copied or built file that does not match is not left in DEST.

  python benchmarks/fetch_data.py [--dest DIR] [--check] [--from DIR] [--manifest YAML] [FILE ...]
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

import pyarrow.parquet as pq
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import BENCH_DATA  # noqa: E402
from data_builders import BUILDERS  # noqa: E402

MANIFEST = Path(__file__).resolve().parent / "data_sources.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(_Strict):
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    path: str


class DataFile(_Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(gt=0)
    data_md: str  # its section in DATA.md
    license: str
    builder: Optional[str] = None
    builder_args: dict = {}  # keyword arguments of the builder
    sources: list[Source] = Field(min_length=1)

    @field_validator("builder")
    @classmethod
    def _known_builder(cls, name):
        if name is not None and name not in BUILDERS:
            raise ValueError(f"unknown builder {name!r}; benchmarks/data_builders.py has {sorted(BUILDERS)}")
        return name


class Download(_Strict):
    url: str
    timeout_s: float = Field(gt=0)


class Manifest(_Strict):
    download: Download
    writer: dict
    files: dict[str, DataFile]


class FetchError(Exception):
    """A file could not be fetched, built or copied; the message says why."""


def load_manifest(path: Path) -> Manifest:
    try:
        return Manifest.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError) as exc:
        sys.exit(f"{path}: cannot read the data manifest: {exc}")
    except ValidationError as exc:
        lines = [f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        sys.exit(f"{path}: invalid data manifest:\n" + "\n".join(lines))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, entry: DataFile) -> str | None:
    """None when the file has the recorded sha256, else what is wrong with it."""
    got = sha256_of(path)
    if got == entry.sha256:
        return None
    return f"checksum mismatch: sha256 {got} ({path.stat().st_size} bytes), expected {entry.sha256} ({entry.bytes} bytes)"


def download(url: str, timeout_s: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"cannot download {url}: {reason} (offline? copy the files from a mirror with --from DIR)") from exc


def build(name: str, entry: DataFile, manifest: Manifest, out: Path) -> None:
    """Download the entry's source files at their commits and write the table its builder makes."""
    if entry.builder is None:
        raise FetchError(f"no builder: its conversion from {len(entry.sources)} source(s) is described in "
                         f"benchmarks/DATA.md section {entry.data_md} but not scripted; copy it with --from DIR")
    sources = {s.path: download(manifest.download.url.format(repo=s.repo, commit=s.commit, path=s.path),
                                manifest.download.timeout_s)
               for s in entry.sources}
    try:
        table = BUILDERS[entry.builder](sources, **entry.builder_args)
    except (ValueError, KeyError, TypeError, OSError) as exc:  # OSError: a corrupt gzip
        raise FetchError(f"cannot build it from its sources: {exc}") from exc
    pq.write_table(table, out, **manifest.writer)


def obtain(name: str, entry: DataFile, manifest: Manifest, dest: Path, mirror: Path | None) -> str:
    """Put the file into dest (copy or build into a temporary file first) and say how it got there."""
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        staged = Path(tmp) / name
        if mirror is not None:
            if not (mirror / name).is_file():
                raise FetchError(f"not in {mirror}")
            shutil.copyfile(mirror / name, staged)
            how = f"copied from {mirror}"
        else:
            build(name, entry, manifest, staged)
            how = f"fetched: built from {len(entry.sources)} source file(s) with {entry.builder}"
        problem = verify(staged, entry)
        if problem:  # a wrong file never lands in dest
            raise FetchError(problem)
        staged.replace(dest / name)
    return how


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", help="only these files (default: every file in the manifest)")
    parser.add_argument("--dest", type=Path, default=BENCH_DATA, help=f"data folder (default $BENCH_DATA, else {BENCH_DATA})")
    parser.add_argument("--check", action="store_true", help="only verify the files in DEST; fetch nothing")
    parser.add_argument("--from", dest="mirror", type=Path, help="copy missing files from this folder instead of downloading")
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help="data manifest (default: %(default)s)")
    args = parser.parse_args(argv)

    manifest = load_manifest(args.manifest)
    unknown = sorted(set(args.files) - set(manifest.files))
    if unknown:
        parser.error(f"not in {args.manifest}: {', '.join(unknown)}")
    if args.mirror is not None and not args.mirror.is_dir():
        parser.error(f"--from {args.mirror}: not a folder")
    if not args.check:
        args.dest.mkdir(parents=True, exist_ok=True)

    failed = 0
    for name in args.files or manifest.files:
        entry = manifest.files[name]
        path = args.dest / name
        try:
            if path.is_file():
                problem = verify(path, entry)
                if problem:
                    raise FetchError(problem)
                status = "ok"
            elif args.check:
                raise FetchError(f"missing from {args.dest}")
            else:
                status = obtain(name, entry, manifest, args.dest, args.mirror)
        except FetchError as exc:
            failed += 1
            status = f"FAILED: {exc}"
        print(f"{name}: {status}", flush=True)
    if failed:
        print(f"{failed} of {len(args.files or manifest.files)} file(s) failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
