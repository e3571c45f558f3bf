"""Tables spilled to disk by a hash of their key: every row comes back once, from the one partition its key
hashes to, and a retried write (the same file name) replaces its rows instead of adding them twice."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from core.hashing import key_hashes
from core.spill import part_of, read_part, write_parts


@pytest.mark.parametrize("keys", [[f"doc-{i % 37}" for i in range(500)], list(np.arange(500) % 37)],
                         ids=["strings", "integers"])
def test_rows_come_back_once_each_from_their_keys_partition(tmp_path, keys):
    table = pa.table({"key": keys, "row": list(range(len(keys)))})
    assert write_parts(table, "key", tmp_path, 5, "batch-0") == len(keys)
    write_parts(table, "key", tmp_path, 5, "batch-0")  # a retried writer: same name, same rows

    back = [read_part(tmp_path, part) for part in range(5)]
    assert sorted(r for t in back if t is not None for r in t["row"].to_pylist()) == list(range(len(keys)))
    for part, spilled in enumerate(back):
        if spilled is not None:
            assert set(part_of(spilled["key"], 5).tolist()) == {part}  # equal keys share one partition
    assert read_part(tmp_path, 99, empty=table.schema).num_rows == 0


def test_strings_hash_the_same_however_they_are_held():
    keys = ["alpha", "béta", ""]
    assert np.array_equal(key_hashes(keys), key_hashes(pa.array(keys)))
    assert np.array_equal(key_hashes(keys), key_hashes(pa.chunked_array([keys[:1], keys[1:]])))
    assert len(set(key_hashes(keys).tolist())) == 3
