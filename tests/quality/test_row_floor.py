"""Every gate refuses an empty dataset, and one under its row floor (``min_rows``): each kind by
``python -m quality validate``, the review export and the factory as jobs (exit 1, naming why, nothing published)."""
from __future__ import annotations

import pyarrow as pa
import pytest
from conftest import PARAGRAPHS, parquet_source, write_config, write_parquet
from quality_samples import documents, packed, preferences, publish, sft
from review_helpers import review_store

from core.errors import ShortfallError
from core.publish import read_finished_manifest
from quality.__main__ import main
from quality.config import GateSettings
from quality.gate import validate
from quality.review.export import ExportConfig, export


def reviewed(n: int) -> pa.Table:
    table = preferences(n, status="approved")
    return table.append_column("annotators", pa.array([["ann"]] * n, pa.list_(pa.string()))).append_column(
        "review_votes", pa.array([1] * n, pa.int32()))


KINDS = {"documents": ("documents", documents), "cpt": ("train", packed), "sft": ("sft", sft),
         "preferences": ("preferences", preferences), "reviews": ("preferences", reviewed)}


def failed(result) -> set[str]:
    return {verdict.check.name for verdict in result.failed}


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_or_near_empty_dataset_of_every_kind_fails_its_gate(tmp_path, kind):
    folder, rows = KINDS[kind]
    empty = publish(tmp_path / "empty", {folder: rows(2).slice(0, 0)}, {})
    assert "rows" in failed(validate(kind, empty))
    near_empty = publish(tmp_path / "near", {folder: rows(2)}, {})
    assert "rows" in failed(validate(kind, near_empty, min_rows=3))
    assert "rows" not in failed(validate(kind, near_empty))  # the default floor: 1


def test_the_command_line_names_the_row_floor(tmp_path, capsys):
    empty = publish(tmp_path / "empty", {"sft": sft(2).slice(0, 0)}, {})
    assert main(["validate", "sft", str(empty)]) == 1
    assert "FAIL rows" in capsys.readouterr().out


def test_an_export_without_approved_pairs_fails_naming_why(tmp_path):
    store = review_store(tmp_path / "r.sqlite", {"ann": False}, items=3)
    with pytest.raises(ShortfallError, match=r"the reviews output has 0 row\(s\), fewer than quality.min_rows 1; "
                                             r"nothing was published\. Top reasons rows were dropped: no_decision 3"):
        export(store, ExportConfig(db=str(tmp_path / "r.sqlite"), output_dir=str(tmp_path / "out")))
    annotator = store.annotator_credentials("ann")[0]
    lease = store.next_lease(annotator, 60)
    store.submit(annotator, lease.item.id, lease.item.version, "keep", None)
    with pytest.raises(ShortfallError, match=r"has 1 row\(s\), fewer than quality.min_rows 2"):
        export(store, ExportConfig(db=str(tmp_path / "r.sqlite"), output_dir=str(tmp_path / "out"),
                                   quality=GateSettings(min_rows=2)))
    assert read_finished_manifest(tmp_path / "out") is None
    assert export(store, ExportConfig(db=str(tmp_path / "r.sqlite"), output_dir=str(tmp_path / "out")))["outputs"][
        "preferences"]["rows"] == 1


@pytest.mark.slow
def test_a_factory_run_that_keeps_nothing_or_too_little_fails_even_with_its_gate_off(tmp_path, run_factory):
    from factory.config import load_factory_config
    from factory.factory_run import run_factory as run

    def config(folder, texts, **quality):
        data = write_parquet(tmp_path / folder / "docs.parquet", {"id": [f"d{i}" for i in range(len(texts))],
                                                                  "text": texts})
        return load_factory_config(write_config(
            tmp_path / folder / "config.yaml", sources=[parquet_source("docs", data)], output_dir=tmp_path / folder / "out",
            dedup={"exact": {"enabled": False}, "fuzzy": {"enabled": False}}, quality=quality))

    with pytest.raises(ShortfallError, match=r"the documents output has 0 row\(s\).*Top reasons rows were dropped: "
                                             r"gopher_repetition:top_2_gram 3; the rejects are in .*/rejects"):
        run(config("empty", ["Too short.", "Also short.", "Short."], gate=False))
    assert read_finished_manifest(tmp_path / "empty" / "out") is None
    with pytest.raises(ShortfallError, match=r"the documents output has 2 row\(s\), fewer than quality.min_rows 3"):
        run(config("near", [*PARAGRAPHS[:2], "Too short."], min_rows=3))
    assert read_finished_manifest(tmp_path / "near" / "out") is None
