"""`input.limit` takes the same rows on every run: the first N by id, whatever order the input's part
files come in (a Ray-written output names them differently on every run)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from synth.config import InputConfig
from synth.inputs import read_input


def test_limit_takes_the_first_rows_by_id_whatever_the_file_order(tmp_path):
    chosen = []
    for names in (("a.parquet", "b.parquet"), ("b.parquet", "a.parquet")):  # the same rows, files swapped
        folder = tmp_path / "-".join(names)
        folder.mkdir()
        pq.write_table(pa.table({"id": ["d3", "d4"], "text": ["three", "four"]}), folder / names[0])
        pq.write_table(pa.table({"id": ["d1", "d2"], "text": ["one", "two"]}), folder / names[1])
        rows, _ = read_input(InputConfig(path=str(folder), id_column="id", text_column="text", title_column=None,
                                         limit=2), "input", {"id": "id_column", "text": "text_column"})
        chosen.append(rows["id"].to_pylist())
    assert chosen == [["d1", "d2"], ["d1", "d2"]]
