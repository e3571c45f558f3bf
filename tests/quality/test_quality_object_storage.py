"""The quality jobs with their inputs on object storage (a real S3 API server on loopback): `validate` on a
published output and on plain Parquet, with its verdict written back to the run's manifest in one PUT, and
`review load` reading its preferences from s3:// into the local review database."""
from __future__ import annotations

import logging

import boto3
import pyarrow.parquet as pq
from quality_samples import preferences, publish, replace_row, sft
from s3_server import BUCKET, s3, upload  # noqa: F401 (the fixture)

from core.publish import current_run_dir, read_finished_manifest
from quality.__main__ import main
from quality.review.sqlite_store import SqliteReviewStore


def test_validate_a_published_output_on_s3_records_the_verdict_in_its_manifest(
        tmp_path, s3, monkeypatch, capsys, caplog):  # noqa: F811
    monkeypatch.chdir(tmp_path)  # the Data Docs of a remote dataset are rendered to a local folder
    output = "s3://corpus/quality/sft"
    publish(output, {"sft": sft(30)}, {})
    run = current_run_dir(output)
    before = read_finished_manifest(output)

    caplog.set_level(logging.INFO, logger="werkzeug")  # the S3 server's request log
    assert main(["validate", "sft", output]) == 0
    writes = [r.getMessage() for r in caplog.records if '"PUT ' in r.getMessage() or '"POST ' in r.getMessage()]
    # object storage has no rename: the manifest is replaced whole by one PUT (no multipart upload)
    assert len(writes) == 1 and f'"PUT /{run.split("://", 1)[1]}/manifest.json HTTP' in writes[0], writes
    out = capsys.readouterr().out
    assert f"quality gate (sft) on {run}: passed" in out and "30 rows" in out

    manifest = read_finished_manifest(output)
    assert manifest["quality"]["success"] is True and manifest["quality"]["rows"] == 30
    assert manifest["files"] == before["files"]  # the Data Docs stay local: the run's files are unchanged
    docs = tmp_path / "quality-docs" / "s3" / run.split("://", 1)[1] / "index.html"
    assert docs.is_file() and manifest["quality"]["data_docs"] == str(docs)


def test_validate_fails_bad_data_on_s3_and_plain_parquet_has_no_manifest_to_write(tmp_path, s3, capsys):  # noqa: F811
    endpoint, _ = s3
    pq.write_table(replace_row(sft(30), 3, id="s2"), tmp_path / "part-0.parquet")
    folder = "s3://corpus/plain/sft"
    upload(endpoint, tmp_path / "part-0.parquet", "plain/sft/part-0.parquet")
    docs = tmp_path / "docs"

    assert main(["validate", "sft", folder, "--docs-dir", str(docs)]) == 1
    out = capsys.readouterr().out
    assert f"on {folder}: FAILED" in out and "FAIL unique_ids" in out and "s2 = s2" in out
    assert (docs / "index.html").is_file()
    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=endpoint).list_objects_v2(
        Bucket=BUCKET, Prefix="plain/")["Contents"]]
    assert keys == ["plain/sft/part-0.parquet"]  # nothing written beside plain Parquet


def test_validate_names_a_corrupt_file_on_s3(tmp_path, s3, capsys):  # noqa: F811
    endpoint, _ = s3
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    uri = upload(endpoint, tmp_path / "broken.parquet", "corrupt/broken.parquet")
    assert main(["validate", "sft", "s3://corpus/corrupt/", "--docs-dir", str(tmp_path / "d")]) == 2
    assert f"PATH: {uri}: not a readable Parquet file" in capsys.readouterr().err


def review_load(preferences: str, db, overlap: int | None = None) -> int:
    """`python -m quality review load PREFERENCES --db DB [--overlap N]`, its exit code."""
    return main(["review", "load", preferences, "--db", str(db), *(["--overlap", str(overlap)] if overlap else [])])


def test_review_load_reads_preferences_from_s3_into_the_local_database(tmp_path, s3, capsys):  # noqa: F811
    output = "s3://corpus/review/preferences"
    table = replace_row(preferences(6), 2, chosen="  ")  # a blank answer cannot be reviewed
    publish(output, {"preferences": table}, {})
    db = tmp_path / "reviews.sqlite"

    assert review_load(output, db, overlap=2) == 0
    out = capsys.readouterr().out
    assert f"loaded 5 new item(s) from {output} with overlap 2" in out and "left out 1 row(s)" in out
    assert {item.id for item in SqliteReviewStore(db).items()} == {f"p{i}" for i in range(6)} - {"p2"}
    assert review_load(output, db) == 0  # again: a no-op
    assert "loaded 0 new item(s)" in capsys.readouterr().out


def test_review_load_names_the_missing_column_of_a_file_on_s3(tmp_path, s3, capsys):  # noqa: F811
    endpoint, _ = s3
    pq.write_table(preferences(3).drop_columns(["rejected"]), tmp_path / "part-0.parquet")
    uri = upload(endpoint, tmp_path / "part-0.parquet", "review/no-rejected/part-0.parquet")
    assert review_load("s3://corpus/review/no-rejected", tmp_path / "db.sqlite") == 2
    err = capsys.readouterr().err
    assert f"PREFERENCES_DIR: {uri}: missing column(s) ['rejected']" in err
