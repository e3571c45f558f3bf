"""What every job (factory run, prepare, synth) does around its work: start or join Ray, time
its steps, refuse to clobber an output, and write a Ray dataset to Parquet."""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from factory.common.publish import OutputExistsError, read_finished_manifest, remove_stale_partials


def init_ray(config) -> None:
    """Join the cluster named by ``config.address`` or RAY_ADDRESS (as under ``ray job submit``), else
    start a fresh local Ray of ``config.num_cpus``: never someone else's ``ray start`` on this machine
    by accident. Any job's Ray config will do (it needs ``address`` and ``num_cpus``)."""
    import ray

    if ray.is_initialized():
        return
    address = config.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(address="local", num_cpus=config.num_cpus, include_dashboard=False, log_to_driver=True)


@contextmanager
def timed(timings: dict, name: str):
    start = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - start, 3)


def write_parquet(ds, path: Path, empty_schema: pa.Schema) -> None:
    ds.write_parquet(str(path), compression="zstd")
    if not any(path.glob("*.parquet")):  # Ray writes no file for an empty dataset; readers still need one
        path.mkdir(parents=True, exist_ok=True)
        pq.write_table(empty_schema.empty_table(), path / "empty.parquet", compression="zstd")


def check_output_dir(output: Path, digest: str, overwrite: bool, echo) -> dict | None:
    finished = read_finished_manifest(output)
    if finished and finished.get("config_hash") == digest and not overwrite:
        return finished
    if output.exists() and not overwrite:
        what = "a finished run with a different config" if finished else "files that are not a finished run"
        raise OutputExistsError(f"{output} holds {what}; pass --overwrite to replace it, or choose another output_dir")
    return None


def announce_finished(output: Path, job: str, digest: str, finished: dict, echo, on: str = "") -> None:
    echo(f"{output} already holds a finished {job} of this config{on} (hash {digest}, run {finished['run_id']}); "
         "nothing to do. Pass --overwrite to run again.")


def clear_stale_partials(output: Path, echo) -> None:
    """Remove what crashed runs left beside ``output``, saying so."""
    for stale in remove_stale_partials(output):
        echo(f"removed unfinished output of an earlier crashed run: {stale}")
