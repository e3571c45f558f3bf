"""One published run: the steps every job takes around its work, written once.

    run = PublishedRun(config.output_dir, config, "run", overwrite=overwrite)
    if run.finished:                   # this config's output is already published: nothing to do
        return run.finished
    ...check inputs...
    with run.writing(inputs) as partial:   # unfinished runs cleared, run id, manifest started
        with run.timed("step"):
            ...write into partial...
        run.manifest["outputs"] = ...
    # here: manifest (with timings and every file) written last, then CURRENT names the run (core.publish)

``partial`` is the run's own folder ``<output_dir>/runs/<run id>``. On object storage it is a local folder on
the driver for the small files the driver writes (reports, tokenizers), uploaded at publish; the data Ray tasks
write goes through ``run.write_data(folder, ...)``, straight to ``<output_dir>/runs/<run id>/<folder>`` from whichever node
runs the task, and scratch to ``run.scratch()`` (docs/OBJECT_STORAGE.md). A crash inside ``writing`` leaves a
run folder CURRENT does not name, which no reader reads and the next run removes (or, for a job that resumes,
continues from the units it finished: ``core.resume``); the published run stays whole and current.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pyarrow as pa

from pydantic import BaseModel

from core import progress
from core.config import config_hash
from core.errors import ConfigError, OutputExistsError
from core.manifest import base_manifest, new_run_id
from core.node_loss import node_loss_named
from core.parquet import parquet_counts, write_dataset
from core.publish import MANIFEST, RUNS, listed_files, old_versions, read_finished_manifest, remove_version, \
    retire_unversioned, run_folder, unfinished_runs, upload_manifest, upload_staged, write_json_atomically, \
    write_pointer
from core.resume import RESUME, Ledger, finish, read_identity, resumable, write_identity
from core.storage import default_storage, is_uri, locate
from core.watchdog import stalls_named


class PublishedRun:
    """A job's output directory, from the "already finished?" check to the pointer that publishes a version.

    ``upstream`` ({manifest key: value}) names what the output was made from beyond the config,
    e.g. the factory run a prepare run read: a finished output of the same config made from
    another upstream is refreshed, not skipped.
    """

    def __init__(self, output_dir: str | Path, config: BaseModel, job: str, *, overwrite: bool = False,
                 upstream: dict | None = None):
        self.remote = is_uri(output_dir)
        self.output = str(output_dir).rstrip("/") if self.remote else Path(output_dir).expanduser()
        self.config, self.job = config, job
        self.digest = config_hash(config)
        self.upstream = upstream or {}
        self.run_id: str | None = None
        self.partial: Path | None = None
        self.remote_files: list[dict] = []  # manifest entries of the files Ray tasks wrote to object storage
        self.uploaded: set[str] = set()  # staged files already copied to the run's folder on object storage
        self.manifest: dict = {}
        self.timings: dict[str, float] = {}
        self.ledger: Ledger | None = None  # the finished units of this run (core.resume)
        self.resumed = False  # True: this run continues an unfinished one of the same config and inputs
        self.finished = self._finished_output(overwrite)

    def _finished_output(self, overwrite: bool) -> dict | None:
        """The published manifest when this exact run is already done; raises if ``output`` must not be replaced."""
        finished = read_finished_manifest(self.output)
        if finished and finished.get("config_hash") == self.digest and not overwrite:
            stale = {key: value for key, value in self.upstream.items() if finished.get(key) != value}
            if not stale:
                on = "".join(f" on {key.replace('_', ' ')} {value['run_id']}" for key, value in self.upstream.items()
                             if isinstance(value, dict) and "run_id" in value)  # e.g. " on factory run <id>"
                # the whole outcome of this run: said even with -q
                progress.summary(f"{self.output} already holds a finished {self.job} of this config{on} (hash "
                                 f"{self.digest}, run {finished['run_id']}); nothing to do. Pass --overwrite to run "
                                 "again.")
                return finished
            progress.say(f"{self.output} was made from an earlier {', '.join(k.replace('_', ' ') for k in stale)}; "
                         "running again")
            return None
        if self._holds_anything() and not overwrite:
            what = "a finished run with a different config" if finished else "files that are not a finished run"
            raise OutputExistsError(f"{self.output} holds {what}; pass --overwrite to replace it, "
                                    "or choose another output_dir")
        return None

    def _holds_anything(self) -> bool:
        if self.remote:
            from pyarrow.fs import FileType

            return locate(self.output, "output_dir").info().type != FileType.NotFound
        # a folder holding only runs/ that CURRENT never named is what crashed runs left: the next run clears it
        return self.output.exists() and any(p.name != RUNS for p in self.output.iterdir())

    @property
    def folder(self) -> Path | str:
        """This run's own folder, where its files are once published (``<output_dir>/runs/<run id>``)."""
        return run_folder(self.output, self.run_id)

    def write_data(self, folder: str, ds, empty_schema: pa.Schema, count_columns: Sequence[str] = ()
                   ) -> pa.Table | None:
        """Ray tasks write ``ds`` as the run's data folder ``folder``: in ``partial`` locally; on object storage
        straight into the run's own folder there (``<output>/runs/<run id>/<folder>``), which every node
        reaches, never the driver's staging folder (a task on another node would write into its own disk).

        Returns the rows per value of ``count_columns`` (column ``n``; None without columns) of what was
        written: read back from the local files; on object storage as each writer counted the rows of the file
        it sent whole, with the checksum of the bytes it sent, so nothing is read back from the store."""
        if not self.remote:
            write_dataset(ds, self.partial / folder, empty_schema)
            return parquet_counts(self.partial / folder, count_columns) if count_columns else None
        from core.described_parquet import write_described  # imports Ray, which a finished run need not load

        described = write_described(ds, locate(f"{self.folder}/{folder}", "output_dir"), empty_schema, count_columns)
        self.remote_files += [{**entry, "path": f"{folder}/{entry['path']}"} for entry in described.files]
        return described.counts

    def share(self, name: str) -> Path | str:
        """A file or folder the driver wrote in ``partial`` that Ray tasks on every node read (a tokenizer it
        trained): its path locally; on object storage uploaded now into the run's folder there, and its URI,
        which a task reads through its node's copy (``core.local_copy``)."""
        if not self.remote:
            return self.partial / name
        self.uploaded |= upload_staged(self.partial, self.folder, under=name, skip=self.uploaded)
        return f"{self.folder}/{name}"

    def scratch(self) -> Path:
        """The run's scratch folder (dedup spill and tables), which the job deletes before publishing: in
        ``partial`` locally (as always); for an output on object storage ``storage.scratch_dir`` when set (a
        disk every node mounts at that path), else the driver's staging folder, which only one node sees: a
        multi-node cluster must set ``storage.scratch_dir`` and is refused without it."""
        if not self.remote:
            return self.partial / "_work"
        root = self.storage.scratch_dir
        if root is not None:
            return Path(root).expanduser() / f"{self.run_id}-work"
        self.require_one_node("storage.scratch_dir", "set storage.scratch_dir to a folder every node mounts at the "
                                                     "same path (NFS, EFS, Lustre) for the dedup spill")
        return self.partial / "_work"

    def require_one_node(self, key: str, what_to_do: str) -> None:
        """For an output on object storage, Ray tasks that write into the driver's staging folder are right only
        when Ray has one node (a task on another node would write into its own disk); else a ConfigError."""
        import ray

        nodes = [node for node in ray.nodes() if node.get("Alive")] if self.remote and ray.is_initialized() else []
        if len(nodes) > 1:
            raise ConfigError(f"{key}: output_dir {self.output} is on object storage and Ray has {len(nodes)} nodes; "
                              f"{what_to_do}")

    @property
    def storage(self):
        return getattr(self.config, "storage", None) or default_storage()

    @contextmanager
    def writing(self, inputs: list[Path], before_publish: Callable[[Path | str, dict, Path], None] | None = None,
                resume: bool = False) -> Iterator[Path]:
        """The partial directory to write into; published (manifest last) when the block ends without error.

        ``before_publish(partial, manifest, staging)`` (a quality gate) may add to the manifest or raise: then the
        partial directory, with its manifest, stays for inspection and nothing is published. (On object storage
        it is given the run's folder there, where the whole run is by then: what Ray tasks wrote, and the staged
        files, uploaded before the gate.)

        ``resume``: the job marks its finished units in ``self.ledger``; an unfinished run of the same config,
        inputs and code (one killed) is continued in its own folder, under its run id, instead of cleared.
        """
        self.run_id = new_run_id()
        self.manifest = {**base_manifest(self.run_id, self.config, inputs), **self.upstream}
        if not self.remote:
            self._resume_or_clear(resume)
        if self.remote:  # staged on local disk, uploaded when finished (object storage has no rename)
            self.partial = Path(tempfile.mkdtemp(prefix=f"{self.run_id}-"))
            if resume:
                progress.say(f"output_dir {self.output} is on object storage: a killed run there is not resumed "
                             "(its staging and scratch are the driver's own); this run starts afresh")
        elif not self.resumed:
            self.partial = Path(self.folder)
            self.partial.mkdir(parents=True, exist_ok=False)
        resumable_here = resume and not self.remote  # (object storage: staged files would be uploaded)
        if resumable_here and not self.resumed:
            write_identity(self.partial, self.manifest)
        self.ledger = Ledger(self.partial / RESUME if resumable_here else None)
        if self.resumed:
            before = self.ledger.counts()
            self.manifest["resumed"] = {"units_finished_before": before["finished"], "units_redone": before["under_way"]}
            progress.say(f"resuming run {self.run_id}: " + ", ".join(
                self.ledger.progress() + [f"{before['under_way']} unit(s) under way when it stopped are redone"]))
        yield self.partial
        if self.remote:
            self.uploaded |= upload_staged(self.partial, self.folder, skip=self.uploaded)
        try:
            if before_publish is not None:
                with self.timed("quality_gate"):
                    before_publish(self.folder if self.remote else self.partial, self.manifest, self.partial)
        finally:
            self.timings["total"] = round(sum(v for k, v in self.timings.items() if k != "total"), 3)
            self.manifest["timings_s"] = self.timings
            if self.ledger.root is not None:
                self.manifest["units"] = self.ledger.counts()["finished"]
            finish(self.partial)  # last: a run killed before this point still finds its finished units
            # readers read these, never a listing
            self.manifest["files"] = sorted(listed_files(self.partial) + self.remote_files,
                                            key=lambda entry: entry["path"])
            write_json_atomically(self.partial / MANIFEST, self.manifest)
        self._publish()

    def _resume_or_clear(self, resume: bool) -> None:
        """Continue the unfinished run this one repeats (``resume``), and remove what other crashed runs left."""
        unfinished = unfinished_runs(self.output)
        keep, why_not = resumable(unfinished, self.manifest) if resume else (None, None)
        if why_not:
            progress.say(why_not)
        for stale in unfinished:
            if stale != keep:
                shutil.rmtree(stale, ignore_errors=True)
                progress.say(f"removed unfinished output of an earlier crashed run: {stale}")
        if keep is not None:
            earlier = read_identity(keep)
            self.run_id, self.partial, self.resumed = keep.name, keep, True
            self.manifest = {**earlier, **self.upstream}
            (keep / MANIFEST).unlink(missing_ok=True)  # a run refused by its gate wrote one: it is written again

    def _publish(self) -> None:
        """The run's folder complete (uploaded, on object storage), then CURRENT names it: the one atomic step."""
        if self.remote:
            upload_staged(self.partial, self.folder, skip=self.uploaded)  # what the gate added (its Data Docs)
            upload_manifest(self.partial, self.folder)
            shutil.rmtree(self.partial, ignore_errors=True)
        write_pointer(self.output, self.run_id)
        if not self.remote:
            retire_unversioned(self.output)  # files of the layout before versions, which no reader reads now
        keep = self.storage.keep_versions
        for old in old_versions(self.output, keep):  # on object storage also what crashed runs left there
            remove_version(old)
            progress.say(f"removed old version {old} (storage.keep_versions: {keep})")

    @contextmanager
    def timed(self, name: str, shown: str | None = None, unit: str = "rows") -> Iterator[None]:
        """Adds the block's wall time to the manifest's ``timings_s``. A Ray Data pass inside it that stops
        making progress (``core.watchdog.guard_data_progress``) fails as a ``StalledError`` naming ``name``; work
        that Ray lost with a dead node and could not recover, as a ``NodeLostError`` naming ``name`` and the node.
        Its progress lines say ``shown`` (default ``name`` in words: ``exact_dedup`` "exact dedup"), counting
        ``unit``."""
        start = time.perf_counter()
        label = shown or name.replace("+", ", ").replace("_", " ")
        with stalls_named(name), node_loss_named(name), progress.stage(label, unit):
            yield
        self.timings[name] = round(time.perf_counter() - start, 3)
