"""A bounded, layout-independent sample of one column, brought to the driver for a fit."""
from __future__ import annotations

from factory.prepare.hashing import hash_sample_batch


def sample_column(ds, column: str, n_total: int, n_wanted: int, salt: str) -> list:
    """A bounded hash sample of one column, brought to the driver (fitting and quantiles need it there);
    sorted, because blocks arrive in any order and fits (BPE, SVD, k-means) depend on row order."""
    fraction = min(1.0, n_wanted / max(n_total, 1))
    sample = ds.map_batches(hash_sample_batch, fn_kwargs={"fraction": fraction, "salt": salt}, batch_format="pyarrow")
    # bounded: each row is kept with probability n_wanted / n_total, so about n_wanted rows (a binomial
    # count, within a few sqrt(n_wanted) of it) reach the driver whatever the corpus size; n_wanted is a
    # config number (tokenizer.train_sample_docs, grouping.fit_sample_docs, curriculum.quantile_sample_docs)
    return sorted(sample.select_columns([column]).to_pandas()[column].tolist())
