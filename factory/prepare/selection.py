"""Row and column selections of one pyarrow batch, for ``map_batches``."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def drop_columns(batch: pa.Table, names: list[str]) -> pa.Table:
    """``batch`` without those of ``names`` it has (a column dropped earlier is no error)."""
    return batch.drop_columns([n for n in names if n in batch.column_names])


def of_domain_label(batch: pa.Table, domain_label: str) -> pa.Table:
    """The rows whose ``domain`` column is ``domain_label`` (domain or general)."""
    return batch.filter(pc.equal(batch["domain"], domain_label))


def of_split(batch: pa.Table, split: str) -> pa.Table:
    """The rows of one split (train or validation)."""
    return batch.filter(pc.equal(batch["split"], split))
