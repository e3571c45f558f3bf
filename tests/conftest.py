"""Shared fixtures: one local Ray for the session, and helpers that write tiny crafted corpora,
a factory config on top of a preset, and run the pipeline, reading back what it published."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

# Normal English prose: each passes every datatrove filter of the web preset (checked in
# test_filters.py) and they share no long word sequences, so none is a duplicate of another.
PARAGRAPHS = [
    "The city council met on Tuesday evening to discuss the new plan for the public library. "
    "Members of the council said that the old building had become too small for the number of people "
    "who use it every day. Several residents spoke in favour of the proposal and asked that the new "
    "library should have more space for children. Others were worried about the cost of the project and "
    "wanted to know how it would be paid for. The mayor said that the council would publish a full report "
    "on the budget before the next meeting.",
    "Farmers in the valley have started to harvest their apples a week earlier than usual this year. "
    "A long and warm summer helped the fruit to ripen quickly, and most of the orchards report a good crop. "
    "Some growers say that the lack of rain in August made the apples smaller than they would like. "
    "The local cooperative expects to sell most of the harvest to shops in the region. "
    "It will also press part of the crop into juice, which it sells at the weekly market in town.",
    "The museum will open a new exhibition about the history of the railway next month. "
    "Visitors will be able to see old tickets, maps and uniforms that were used by the staff of the line. "
    "A restored steam engine will stand in the main hall, and children can climb into the cab to look at "
    "the controls. The curator said that many of the objects were given to the museum by the families of "
    "former workers. Entry to the exhibition will be free for the first two weeks after it opens.",
    "Volunteers spent the weekend cleaning the beach after the storm left a large amount of rubbish on the "
    "sand. They collected plastic bottles, fishing nets and pieces of wood that had been washed up by the "
    "waves. The group plans to sort the waste so that as much of it as possible can be recycled. "
    "Organisers thanked the local cafe, which gave free drinks to everyone who took part in the work. "
    "They hope to hold another clean up in the autumn, when the weather is still mild.",
]


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray, started once; the pipeline's init_ray sees it and does not start another."""
    import ray

    started = False
    if not ray.is_initialized():
        from core.ray_runtime import RayConfig, worker_env

        # workers get the default ray: section's Arrow allocator, as a job's own Ray would: no warning that it differs
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 runtime_env={"env_vars": worker_env(RayConfig())})
        started = True
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    yield ray
    if started:
        ray.shutdown()


def write_parquet(path: Path, columns: dict[str, list], schema: pa.Schema | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns, schema=schema), path)
    return path


def write_jsonl(path: Path, records: list) -> Path:
    """One line per record: dicts are JSON-encoded, str/bytes are written as the raw line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for record in records:
        if isinstance(record, bytes):
            lines.append(record)
        elif isinstance(record, str):
            lines.append(record.encode("utf-8"))
        else:
            lines.append(json.dumps(record, ensure_ascii=False).encode("utf-8"))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def parquet_source(name: str, path: Path, *, text_column="text", id_column="id", domain="domain", **extra) -> dict:
    return {"name": name, "path": str(path), "text_column": text_column, "id_column": id_column,
            "domain": domain, **extra}


def jsonl_source(name: str, path: Path, *, text_column="body", id_column="doc_id", domain="general", **extra) -> dict:
    return {"name": name, "path": str(path), "text_column": text_column, "id_column": id_column,
            "domain": domain, **extra}


def deep_update(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = deep_update(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def write_config(path: Path, *, sources: list[dict], output_dir: Path | str, preset: str = "web", **sections) -> Path:
    """A user config: preset, explicit sources and output_dir, 2 Ray CPUs, plus any extra sections."""
    config = {"preset": preset, "output_dir": str(output_dir), "sources": sources,
              "ray": {"num_cpus": 2, "batch_size": 64}}
    config = deep_update(config, sections)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class RunResult:
    manifest: dict
    output_dir: Path
    documents: pa.Table
    rejects: pa.Table
    log: list[str]

    @property
    def kept_ids(self) -> set[str]:
        return set(self.documents["id"].to_pylist())

    def doc(self, doc_id: str, source: str | None = None) -> dict:
        rows = [r for r in self.documents.to_pylist() if r["id"] == doc_id and source in (None, r["source"])]
        assert len(rows) == 1, f"{doc_id} ({source or 'any source'}) kept {len(rows)} times"
        return rows[0]

    def reject(self, doc_id: str, source: str | None = None) -> dict:
        rows = [r for r in self.rejects.to_pylist() if r["id"] == doc_id and source in (None, r["source"])]
        assert len(rows) == 1, f"{doc_id} ({source or 'any source'}) rejected {len(rows)} times: {rows}"
        return rows[0]


def published(output_dir: Path | str) -> Path:
    """The folder of the run published at ``output_dir`` (``runs/<id>`` named by CURRENT), as a reader finds it."""
    from core.publish import current_run_dir

    folder = current_run_dir(Path(output_dir))
    assert folder is not None, f"nothing is published at {output_dir}"
    return Path(folder)


def read_output(output_dir: Path, log: list[str] | None = None) -> RunResult:
    output_dir = Path(output_dir)
    run = published(output_dir)
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    return RunResult(
        manifest=manifest,
        output_dir=output_dir,
        documents=pq.read_table(run / "documents"),
        rejects=pq.read_table(run / "rejects"),
        log=log or [],
    )


def run_pipeline(config_path: Path, *, overwrite: bool = False) -> RunResult:
    """``run_factory(load_factory_config(path))`` and what it published."""
    from core import progress
    from factory.config import load_factory_config
    from factory.factory_run import run_factory

    config = load_factory_config(config_path)
    log: list[str] = []
    with progress.lines_to(log.append):
        returned = run_factory(config, overwrite=overwrite)
    result = read_output(Path(config.output_dir), log)
    assert returned["run_id"] == result.manifest["run_id"]
    return result


@pytest.fixture(scope="session")
def run_factory(ray_session):
    return run_pipeline


def units_finished(output: Path) -> int:
    """Units a killed run of ``output`` has marked finished in its resume ledger: what it really wrote."""
    return sum(1 for marker in output.glob("runs/*/_resume/**/*.json")
               if marker.parent.name not in ("plan", "fixed") and marker.name != "identity.json")


def subprocess_env(**extra: str) -> dict:
    """The test's environment for a child process, without any address of the session's Ray."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def pytest_collection_modifyitems(config, items):
    """Under ``make test`` (pytest-xdist, ``--dist loadgroup``) each test file runs whole on one process, so its
    module fixtures (a model trained once, a server) are built once; the cluster drills share one package-scoped
    cluster and S3 server, so the whole ``tests/cluster`` package runs on one process."""
    for item in items:
        path = item.path.relative_to(REPO)
        group = "cluster" if path.parts[:2] == ("tests", "cluster") else str(path)
        item.add_marker(pytest.mark.xdist_group(group))
