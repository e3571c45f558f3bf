"""What a factory stage is.

A stage does one thing to the in-flight document table and is named after it: the name is the
``stage`` of every reject it makes and its row in the funnel. Stages never remove rows; they mark
the rows they drop (``factory.documents.with_rejections``), so the final split into documents and
rejects accounts for every input row.

Two kinds:
- ``RowStage``: one batch at a time, given to Ray Data's ``map_batches``. An instance is a plain
  callable to Ray Data, so it runs in tasks (no actor start-up) and consecutive row stages fuse into
  one streaming pass.
- a stage that needs the whole corpus (dedup) sets ``whole_input`` and does its own Ray work in
  ``prepare``, once; the pipeline first spills its input to Parquet partitioned by document key
  (``StageContext.spilled``), then hands ``apply`` the lazy read of that spill, one block group at a time
  (a killed run resumes by block group: ``factory.passes``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, ContextManager

import pyarrow as pa
from pydantic import TypeAdapter

from factory.dedup.findings import DedupFindings
from factory.dedup.tables import DedupWork
from factory.stages.document_steps import DocumentStep, apply_document_steps


@dataclass
class StageContext:
    """What stages share during one run: Ray Data settings, where dedup works, and what the dedup stages
    found (read by the stages after them and by the manifest)."""

    batch: dict[str, Any]  # map_batches keyword arguments: batch_format, batch_size
    dedup: DedupWork  # where dedup tables go, and their partition count
    timed: Callable[..., ContextManager]  # PublishedRun.timed: (name, shown=None, unit="rows")
    rows_per_block: int  # documents per block when a spill is read back (config ray.rows_per_block)
    rows_per_group: int  # least documents in a block group of a pass, the unit a killed run resumes by (factory.passes)
    spilled: str | None = None  # the documents as last spilled to Parquet, partitioned by document key
    found: DedupFindings = field(default_factory=DedupFindings)


class Stage:
    name: str  # the `stage` of its rejects, and its funnel row
    shown: str | None = None  # how its progress lines name it (default: its name in words)
    config_section: str | None = None  # dotted path of the FactoryConfig section it is built from
    drops_rows: bool = True  # False: it only adds or removes columns, and has no funnel row
    whole_input: bool = False  # True: the pipeline spills the dataset to Parquet before ``apply``

    @classmethod
    def from_config(cls, config) -> "Stage":
        """The stage for a run of ``config`` (a FactoryConfig): built from its ``config_section``."""
        if cls.config_section is None:
            return cls()
        section = config
        for part in cls.config_section.split("."):
            section = getattr(section, part)
        return cls(section)

    @classmethod
    def section_type(cls) -> Any:
        """The type FactoryConfig declares for ``config_section`` (a model, or e.g. dict[str, Model])."""
        from factory.config import FactoryConfig

        declared: Any = FactoryConfig
        for part in cls.config_section.split("."):
            declared = declared.model_fields[part].annotation
        return declared

    def prepare(self, context: StageContext) -> None:
        """Work on the whole corpus, once, before ``apply`` (dedup: find the duplicates); most stages have none."""

    def apply(self, ds, context: StageContext):
        """The lazy dataset with this stage's work on its rows (called once per block group of a pass)."""
        raise NotImplementedError


class RowStage(Stage):
    """A stage applied batch by batch: subclasses implement ``__call__(table) -> table``."""

    def apply(self, ds, context: StageContext):
        return ds.map_batches(self, **context.batch)

    def __call__(self, table: pa.Table) -> pa.Table:
        raise NotImplementedError


class DocumentStepsStage(RowStage):
    """A row stage made of per-document steps (datatrove formatters and filters) built from its config
    section. Steps load word lists and tokenizers, so they are built once per worker process and cached
    on the section's JSON: a stage instance is deserialised again for every Ray task."""

    def __init__(self, section):
        self.section_json = TypeAdapter(self.section_type()).dump_json(section).decode("utf-8")

    @staticmethod
    def build_steps(section) -> list[DocumentStep]:
        raise NotImplementedError

    def steps(self) -> list[DocumentStep]:
        return _built_steps(type(self), self.section_json)

    def __call__(self, table: pa.Table) -> pa.Table:
        return apply_document_steps(table, self.name, self.steps())


@lru_cache(maxsize=16)
def _built_steps(stage_type: type[DocumentStepsStage], section_json: str) -> list[DocumentStep]:
    return stage_type.build_steps(TypeAdapter(stage_type.section_type()).validate_json(section_json))
