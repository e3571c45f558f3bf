"""The whole factory run on real local Ray: exact and near dedup across sources, bad rows as
rejects, the accounting invariant, input errors before any output, idempotent and atomic
output, and the command line."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import (
    PARAGRAPHS,
    REPO,
    jsonl_source,
    parquet_source,
    read_output,
    run_pipeline,
    subprocess_env,
    write_config,
    write_jsonl,
    write_parquet,
)

from core import progress
from core.config import config_hash
from core.errors import AccountingError, InputError, OutputExistsError
from core.publish import current_run_dir
from factory.config import load_factory_config
from factory.factory_run import run_factory as run
from factory.pipeline import FUNNEL_STAGES as STAGES

# --- the crafted corpus -----------------------------------------------------------------------

NEAR_BASE = (
    "The research team spent three years studying how small birds find their way across the sea during the "
    "autumn migration. They fitted light tracking tags to more than two hundred birds and followed them from "
    "the northern forests to the warm coasts of Africa. The results show that young birds often take a longer "
    "route than adults, because they have not yet learned where the best places to rest and feed can be found. "
    "Strong winds over the water can push the birds far from their planned path, and many of them stop on small "
    "islands to wait for better weather. The scientists believe that the birds use the position of the sun "
    "during the day and the stars at night to keep their direction. They now want to find out whether changes "
    "in the climate will make the journey harder for the next generation of travellers. "
    "The study was published this week in a journal about animal behaviour."
)
NEAR_EDIT = NEAR_BASE.replace("the warm coasts of Africa", "the sunny beaches of Africa")
# two documents on the same topic (the new library, like PARAGRAPHS[0]) written independently
TOPIC_A = (
    "The new library will have a reading room for children, a small cafe and a hall for public talks. "
    "Architects said that the building would use solar panels on the roof to keep the cost of heating low. "
    "Work on the site is planned to begin next year, once the council has agreed on the final budget. "
    "Local schools have asked to use the hall for their concerts and plays during the winter months. "
    "The mayor hopes that the doors will open in time for the summer holidays."
)
TOPIC_B = (
    "Readers who visited the old library on Saturday were asked what they would like to see in the new one. "
    "Many of them wanted longer opening hours and more computers, while parents asked for a quiet corner for babies. "
    "Staff collected the answers on paper cards and will send a summary to the planning committee. "
    "The librarian said that she was pleased by how many young people came along to share their ideas. "
    "A second meeting for readers will take place at the town hall next month."
)
SHARED = (
    "The bakery on the corner of the market square has been run by the same family for almost a century. "
    "Every morning the owners start work before dawn so that the bread is ready when the first customers arrive. "
    "Their rye loaf is made with a recipe that the founder brought with him when he moved to the town. "
    "On Sundays there is often a long queue outside the door, and the shop usually sells out before noon. "
    "The family says that it has no plans to sell the business or to move to a bigger shop."
)
PII = (
    "Readers who want to join the walking club can write to the secretary at walks.secretary@example.org for a map. "
    "The club meets at the station every Saturday morning and the walks usually last for about three hours. "
    "New members are asked to bring good shoes, a waterproof coat and something to eat for the lunch break. "
    "If the weather is bad, the leader will call everyone on the morning of the walk from 415-555-2671 to say "
    "whether the group will still go out. The club has been running for more than twenty years."
)
SCAN = (
    "The old mill by the river was repaired last summer and is now open to visitors on most weekends. "
    "Guides explain how the water wheel turned the heavy stones that ground the grain into flour. "
    "A small shop sells bags of flour that are still made at the mill in the traditional way. "
    "Visitors can also walk along the river path to see the ducks and the herons that live near the weir. "
    "Entry to the mill is free for children under the age of twelve."
)
# ids need only be unique per source: these reuse ids of duplicates rejected in another source
HARBOUR = (
    "Fishing boats returned to the harbour early on Friday after the coastguard warned of strong winds. "
    "Crews tied their boats together and carried the morning catch to the market before the rain began. "
    "The harbour master said that the sea wall had been checked last month and was in good condition. "
    "Some of the older fishermen remembered a storm many years ago that flooded the houses along the quay. "
    "The boats are expected to go out again on Monday if the weather improves."
)
CHOIR = (
    "The town choir will sing in the cathedral on Sunday afternoon to raise money for the children's hospital. "
    "Around sixty singers have been practising every Thursday evening since the start of the year. "
    "Their programme includes old folk songs, a few hymns and a new piece written by a local teacher. "
    "Tickets can be bought at the door, and there will be tea and cake in the hall after the concert. "
    "Last year the event raised enough money to buy new beds for the ward."
)
TEN_MB = "word " * (2 * 1024 * 1024)

PAPERS = {  # id -> text, in a Parquet file with a string text column
    "p-01": PARAGRAPHS[0], "p-02": PARAGRAPHS[1], "p-03": PARAGRAPHS[2], "p-04": PARAGRAPHS[3],
    "p-10": TOPIC_A, "p-11": TOPIC_B,
    "p-20": SHARED,
    "p-31": NEAR_BASE, "p-30": NEAR_EDIT,
    "p-40": None, "p-41": "", "p-42": "  \n\t  ", "p-43": TEN_MB,
}
SCANS = {  # a binary text column
    "s-1": SCAN.encode("utf-8"), "s-2": b"caf\xe9 au lait \xff\xfe is not UTF-8", "p-20": HARBOUR.encode("utf-8"),
}
# news.jsonl, one entry per line; "n-30" repeats SHARED exactly, "n-05" with other spacing (same words)
NEWS_LINES = [
    {"doc_id": "n-30", "body": SHARED, "title": "Bakery"},
    {"doc_id": "n-10", "body": PII, "title": "Walking club"},
    "",  # a blank line is not a record
    '{"doc_id": "n-99", "body": "truncated',
    {"body": "A record without an id.", "title": "No id"},
    {"doc_id": "n-05", "body": "  " + SHARED.replace(". ", ".  \n"), "title": "Bakery again"},
    {"doc_id": "p-31", "body": CHOIR, "title": "Choir"},
]
NEWS_STEM = "news.jsonl"
INVALID_JSON_ID, MISSING_ID_ID = f"{NEWS_STEM}:4", f"{NEWS_STEM}:5"  # fallback ids: file name and line number

EXPECTED_KEPT = {  # (source, id)
    ("papers", "p-01"), ("papers", "p-02"), ("papers", "p-03"), ("papers", "p-04"), ("papers", "p-10"),
    ("papers", "p-11"), ("papers", "p-30"), ("scans", "s-1"), ("scans", "p-20"), ("news", "n-10"),
    ("news", "n-05"), ("news", "p-31"),
}
EXPECTED_REJECTS = {  # (source, id) -> (stage, reason)
    ("papers", "p-20"): ("exact_dedup", "exact_duplicate"),
    ("news", "n-30"): ("near_dedup", "near_duplicate"),
    ("papers", "p-31"): ("near_dedup", "near_duplicate"),
    ("papers", "p-40"): ("validate", "null_text"),
    ("papers", "p-41"): ("validate", "empty_text"),
    ("papers", "p-42"): ("validate", "empty_text"),
    ("papers", "p-43"): ("validate", "too_long"),
    ("scans", "s-2"): ("read", "non_utf8"),
    ("news", INVALID_JSON_ID): ("read", "invalid_json"),
    ("news", MISSING_ID_ID): ("read", "missing_id"),
}
INPUT_ROWS = {"papers": len(PAPERS), "scans": len(SCANS), "news": sum(1 for line in NEWS_LINES if line != "")}


def write_corpus(root: Path) -> list[dict]:
    papers = write_parquet(root / "data" / "papers.parquet", {
        "id": list(PAPERS), "text": list(PAPERS.values()), "title": [f"Title of {k}" for k in PAPERS],
    })
    scans = write_parquet(root / "data" / "scans.parquet", {"id": list(SCANS), "text": list(SCANS.values())},
                          schema=pa.schema([("id", pa.string()), ("text", pa.binary())]))
    news = write_jsonl(root / "data" / NEWS_STEM, NEWS_LINES)
    return [
        parquet_source("papers", papers, meta_columns=["title"]),
        parquet_source("scans", scans, domain="general"),
        jsonl_source("news", news, meta_columns=["title"]),
    ]


@pytest.fixture(scope="module")
def main_run(tmp_path_factory, run_factory):
    root = tmp_path_factory.mktemp("main")
    config = write_config(root / "config.yaml", sources=write_corpus(root), output_dir=root / "out")
    return run_factory(config)


def test_crafted_duplicates_are_what_they_claim():
    from test_minhash import jaccard

    assert jaccard(NEAR_BASE, NEAR_EDIT) > 0.9
    assert len(NEAR_BASE.split()) > 150
    assert jaccard(TOPIC_A, TOPIC_B) < 0.1 and jaccard(TOPIC_A, PARAGRAPHS[0]) < 0.1


# --- one run of the crafted corpus ------------------------------------------------------------


@pytest.mark.slow
def test_every_document_is_kept_or_rejected_with_its_reason(main_run):
    kept = main_run.documents.select(["source", "id"]).to_pylist()
    assert {(r["source"], r["id"]) for r in kept} == EXPECTED_KEPT
    assert main_run.documents.num_rows == len(EXPECTED_KEPT)
    got = {(r["source"], r["id"]): (r["stage"], r["reason"]) for r in main_run.rejects.to_pylist()}
    assert got == EXPECTED_REJECTS
    assert main_run.rejects.num_rows == len(EXPECTED_REJECTS)


@pytest.mark.slow
def test_exact_duplicates_across_sources_keep_the_smallest_id(main_run):
    # the same text in papers.parquet (p-20) and news.jsonl (n-30): n-30 is the smaller id
    reject = main_run.reject("p-20", "papers")  # the scans document p-20 is another text
    assert (reject["stage"], reject["reason"]) == ("exact_dedup", "exact_duplicate")
    assert "n-30" in reject["detail"]


@pytest.mark.slow
def test_copies_with_other_spacing_are_near_duplicates_in_the_same_cluster(main_run):
    # n-05 has SHARED's words with other spacing: not the same text, so it meets the quality
    # filters on its own, then joins n-30's cluster with Jaccard 1 and, as the smaller id, is kept
    kept = main_run.doc("n-05")
    assert (kept["dup_cluster"], kept["dup_cluster_size"]) == ("n-05", 3)
    dropped = main_run.reject("n-30")
    assert dropped["stage"] == "near_dedup" and "n-05" in dropped["detail"] and "1.00" in dropped["detail"]
    assert (main_run.manifest["dedup"]["exact_duplicates"], main_run.manifest["dedup"]["near_duplicates"]) == (1, 2)


@pytest.mark.slow
def test_a_copy_that_fails_a_filter_does_not_take_its_clean_twin_with_it(tmp_path, run_factory):
    # t-0 (the smaller id) has a line break after every word and fails FineWeb's line rules;
    # its clean twin t-1 must survive exact dedup, which runs before the filters
    broken = "\n".join(PARAGRAPHS[0].split())
    config = tiny_config(tmp_path, tmp_path / "out", [broken, PARAGRAPHS[0]],
                         dedup={"exact": {"enabled": True}, "fuzzy": {"enabled": True}})
    result = run_factory(config)
    assert result.kept_ids == {"t-1"}
    assert result.reject("t-0")["stage"] == "quality"


@pytest.mark.slow
def test_ids_need_only_be_unique_per_source(main_run):
    # scans' p-20 and news' p-31 share ids with duplicates rejected in papers, not their texts
    assert main_run.reject("p-20")["source"] == "papers" and main_run.reject("p-31")["source"] == "papers"
    for source, doc_id, text in (("scans", "p-20", HARBOUR), ("news", "p-31", CHOIR)):
        doc = main_run.doc(doc_id, source)
        assert doc["text"] == text
        assert (doc["dup_cluster"], doc["dup_cluster_size"]) == (doc_id, 1)
    assert main_run.doc("p-30")["dup_cluster_size"] == 2


@pytest.mark.slow
def test_near_duplicates_are_rejected_and_distinct_documents_on_a_topic_are_kept(main_run):
    kept, dropped = main_run.doc("p-30"), main_run.reject("p-31", "papers")
    assert kept["text"] == NEAR_EDIT
    assert (kept["dup_cluster"], kept["dup_cluster_size"]) == ("p-30", 2)
    assert dropped["stage"] == "near_dedup"
    assert "p-30" in dropped["detail"]
    # same topic, different words: both kept, each in a cluster of its own
    for doc_id in ("p-01", "p-10", "p-11"):
        assert (main_run.doc(doc_id)["dup_cluster"], main_run.doc(doc_id)["dup_cluster_size"]) == (doc_id, 1)


@pytest.mark.slow
def test_accounting_invariant_holds_per_source(main_run):
    accounting = main_run.manifest["accounting"]
    assert set(accounting) == set(INPUT_ROWS)
    kept = main_run.documents.group_by("source").aggregate([("id", "count")]).to_pylist()
    kept = {row["source"]: row["id_count"] for row in kept}
    rejected = main_run.rejects.group_by("source").aggregate([("id", "count")]).to_pylist()
    rejected = {row["source"]: row["id_count"] for row in rejected}
    for source, n_in in INPUT_ROWS.items():
        entry = accounting[source]
        assert entry["in"] == n_in
        assert entry["in"] == entry["kept"] + entry["rejected"]
        assert (entry["kept"], entry["rejected"]) == (kept.get(source, 0), rejected.get(source, 0))
    # every input document is in exactly one of documents/ and rejects/
    out = [(r["source"], r["id"]) for table in (main_run.documents, main_run.rejects)
           for r in table.select(["source", "id"]).to_pylist()]
    known = ({("papers", i) for i in PAPERS} | {("scans", i) for i in SCANS}
             | {("news", r["doc_id"]) for r in NEWS_LINES if isinstance(r, dict) and "doc_id" in r})
    assert known <= set(out)
    assert len(out) == len(set(out)) == sum(INPUT_ROWS.values())


@pytest.mark.slow
def test_manifest_funnel_and_outputs_match_what_is_on_disk(main_run):
    manifest = main_run.manifest
    stages = manifest["stages"]
    assert [s["stage"] for s in stages] == list(STAGES)
    assert stages[0]["in"] == sum(INPUT_ROWS.values())
    assert stages[-1]["out"] == main_run.documents.num_rows
    for row in stages:
        assert row["in"] - row["out"] == sum(row["dropped"].values())
    assert manifest["outputs"]["documents"]["rows"] == main_run.documents.num_rows
    assert manifest["outputs"]["rejects"]["rows"] == main_run.rejects.num_rows
    assert manifest["config_hash"] == config_hash(load_factory_config(main_run.output_dir.parent / "config.yaml"))
    inputs = {Path(i["path"]).name: i for i in manifest["inputs"]}
    assert set(inputs) == {"papers.parquet", "scans.parquet", NEWS_STEM}
    for entry in inputs.values():
        assert entry["bytes"] == Path(entry["path"]).stat().st_size and len(entry["sha256"]) == 64


@pytest.mark.slow
def test_kept_documents_are_cleaned_and_carry_source_domain_and_meta(main_run):
    walking = main_run.doc("n-10")
    assert "walks.secretary@example.org" not in walking["text"] and "<EMAIL>" in walking["text"]
    assert "415-555-2671" not in walking["text"] and "<PHONE>" in walking["text"]
    assert (walking["source"], walking["domain"]) == ("news", "general")
    assert json.loads(walking["meta"]) == {"title": "Walking club"}
    paper = main_run.doc("p-02")
    assert paper["text"] == PARAGRAPHS[1]
    assert (paper["source"], paper["domain"]) == ("papers", "domain")
    assert json.loads(paper["meta"]) == {"title": "Title of p-02"}
    # a binary text column is decoded as UTF-8
    assert main_run.doc("s-1")["text"] == SCAN
    assert main_run.doc("p-20", "scans")["text"] == HARBOUR


@pytest.mark.slow
def test_bad_rows_name_their_problem(main_run):
    assert str(len(TEN_MB)) in main_run.reject("p-43")["detail"]
    assert "byte" in main_run.reject("s-2")["detail"]
    assert "line 4" in main_run.reject(INVALID_JSON_ID)["detail"]
    assert main_run.reject(MISSING_ID_ID)["reason"] == "missing_id"
    assert "doc_id" in main_run.reject(MISSING_ID_ID)["detail"]


# --- errors before any work -------------------------------------------------------------------


def assert_nothing_written(output_dir: Path):
    assert not output_dir.exists()
    assert not list(output_dir.parent.glob(f"{output_dir.name}.*"))


def input_error(config_path: Path) -> str:
    config = load_factory_config(config_path)
    with pytest.raises(InputError) as info:
        run(config)
    assert_nothing_written(Path(config.output_dir))
    return str(info.value)


def test_missing_parquet_column_is_an_error_naming_file_and_column(tmp_path):
    papers = write_parquet(tmp_path / "papers.parquet", {"id": ["a"], "text": [PARAGRAPHS[0]]})
    good = parquet_source("good", papers)
    bad = parquet_source("bad", papers, text_column="body")
    message = input_error(write_config(tmp_path / "c.yaml", sources=[good, bad], output_dir=tmp_path / "out"))
    assert str(papers) in message
    assert "'body'" in message and "sources[1].text_column" in message


def test_missing_id_column_is_an_error(tmp_path):
    papers = write_parquet(tmp_path / "papers.parquet", {"id": ["a"], "text": [PARAGRAPHS[0]]})
    source = parquet_source("papers", papers, id_column="doc_id")
    message = input_error(write_config(tmp_path / "c.yaml", sources=[source], output_dir=tmp_path / "out"))
    assert str(papers) in message and "'doc_id'" in message and "id_column" in message


def test_missing_jsonl_field_is_an_error_naming_file_and_field(tmp_path):
    news = write_jsonl(tmp_path / "news.jsonl", [{"doc_id": "n1", "text": PARAGRAPHS[0]}])
    message = input_error(write_config(tmp_path / "c.yaml", sources=[jsonl_source("news", news)],
                                       output_dir=tmp_path / "out"))
    assert str(news) in message and "'body'" in message and "text_column" in message


def test_corrupt_parquet_is_an_error_naming_the_file(tmp_path):
    corrupt = tmp_path / "broken.parquet"
    corrupt.write_bytes(os.urandom(4096))
    message = input_error(write_config(tmp_path / "c.yaml", sources=[parquet_source("broken", corrupt)],
                                       output_dir=tmp_path / "out"))
    assert str(corrupt) in message and "Parquet" in message


def test_missing_input_path_is_an_error_naming_the_source(tmp_path):
    source = parquet_source("papers", tmp_path / "nowhere.parquet")
    message = input_error(write_config(tmp_path / "c.yaml", sources=[source], output_dir=tmp_path / "out"))
    assert "sources[0] (papers).path" in message and "nowhere.parquet" in message


# --- output lifecycle ---------------------------------------------------------------------------


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(directory)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(directory.rglob("*"))}


def tiny_config(root: Path, output_dir: Path, texts: list[str], **sections) -> Path:
    """One small Parquet source; dedup is off unless asked for (these tests are about the output, and
    each dedup shuffle costs seconds of Ray Data start-up)."""
    papers = write_parquet(root / "tiny.parquet", {"id": [f"t-{i}" for i in range(len(texts))], "text": texts})
    sections.setdefault("dedup", {"exact": {"enabled": False}, "fuzzy": {"enabled": False}})
    return write_config(root / "tiny.yaml", sources=[parquet_source("tiny", papers)], output_dir=output_dir,
                        **sections)


@pytest.mark.slow
def test_rerun_with_the_same_config_is_a_noop(main_run):
    config = load_factory_config(main_run.output_dir.parent / "config.yaml")
    before = snapshot(main_run.output_dir)
    log = []
    with progress.lines_to(log.append):
        again = run(config)
    assert again["run_id"] == main_run.manifest["run_id"]
    assert "nothing to do" in " ".join(log)
    assert snapshot(main_run.output_dir) == before
    assert not list(main_run.output_dir.parent.glob("out.*"))


@pytest.mark.slow
def test_a_different_config_needs_overwrite(main_run, tmp_path, run_factory):
    out = tmp_path / "out"
    shutil.copytree(main_run.output_dir, out)  # a finished run of another config
    config_path = tiny_config(tmp_path, out, PARAGRAPHS[:2])
    before = snapshot(out)
    with pytest.raises(OutputExistsError, match="overwrite"):
        run(load_factory_config(config_path))
    assert snapshot(out) == before

    result = run_factory(config_path, overwrite=True)
    assert result.manifest["run_id"] != main_run.manifest["run_id"]
    assert result.manifest["config_hash"] == config_hash(load_factory_config(config_path))
    assert result.kept_ids == {"t-0", "t-1"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "tiny.parquet", "tiny.yaml"]


def test_a_directory_that_is_not_a_finished_run_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="not a finished run"):
        run(load_factory_config(tiny_config(tmp_path, out, PARAGRAPHS[:1])))
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_unfinished_output_is_never_published_and_the_next_run_removes_or_continues_it(tmp_path, run_factory,
                                                                                       monkeypatch):
    out = tmp_path / "out"
    config_path = tiny_config(tmp_path, out, PARAGRAPHS[:2])
    config = load_factory_config(config_path)
    # what crashed runs leave: a run folder that CURRENT never named, and a .partial- sibling of the layout
    # before versions, even with a manifest naming this very config
    leftover = tmp_path / "out.partial-20200101T000000Z-dead00"
    write_parquet(leftover / "documents" / "part.parquet", {"id": ["old"]})
    (leftover / "manifest.json").write_text(json.dumps({"run_id": "20200101T000000Z-dead00",
                                                        "config_hash": config_hash(config)}))
    unfinished = out / "runs" / "20200101T000001Z-dead01"
    write_parquet(unfinished / "documents" / "part.parquet", {"id": ["half"]})

    def broken_invariant(*args, **kwargs):
        raise AccountingError("accounting invariant broken (simulated)")

    monkeypatch.setattr("factory.factory_run.check_invariant", broken_invariant)
    with pytest.raises(AccountingError):
        run(config)
    assert current_run_dir(out) is None  # nothing published
    assert not leftover.exists() and not unfinished.exists()
    crashed = list((out / "runs").iterdir())
    assert len(crashed) == 1  # this failed run's own folder, which CURRENT does not name

    monkeypatch.undo()
    log = []
    with progress.lines_to(log.append):
        result = run(config)
    # the failed run is of this config, inputs and code: continued under its own id (docs/RESUME.md); what other
    # runs left is removed
    assert result["run_id"] == crashed[0].name
    assert any(line.startswith(f"resuming run {crashed[0].name}") for line in log), log
    assert not list(tmp_path.glob("out.*")) and [p.name for p in (out / "runs").iterdir()] == [result["run_id"]]
    assert read_output(out).kept_ids == {"t-0", "t-1"}


# --- command line -------------------------------------------------------------------------------


def factory_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "factory", *args], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_cli_runs_a_config_and_prints_the_funnel(tmp_path):
    config_path = tiny_config(tmp_path, tmp_path / "configured", [PARAGRAPHS[0], PARAGRAPHS[0], PARAGRAPHS[1]],
                              dedup={"exact": {"enabled": True}, "fuzzy": {"enabled": False}})
    out = tmp_path / "chosen"
    done = factory_cli("run", str(config_path), "--output-dir", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    header = next(line for line in done.stdout.splitlines() if line.startswith("stage"))
    assert header.split()[:4] == ["stage", "in", "out", "dropped"]
    exact_line = next(line for line in done.stdout.splitlines() if line.startswith("exact_dedup"))
    assert "exact_duplicate 1" in exact_line
    assert not (tmp_path / "configured").exists()
    assert read_output(out).kept_ids == {"t-0", "t-2"}


def test_cli_reports_a_missing_column_and_exits_2(tmp_path):
    papers = write_parquet(tmp_path / "papers.parquet", {"id": ["a"], "text": [PARAGRAPHS[0]]})
    config_path = write_config(tmp_path / "c.yaml", sources=[parquet_source("papers", papers, text_column="body")],
                               output_dir=tmp_path / "out")
    done = factory_cli("run", str(config_path))
    assert done.returncode == 2
    assert done.stderr.startswith("error:")
    assert "'body'" in done.stderr and str(papers) in done.stderr
    assert "Traceback" not in done.stderr
    assert_nothing_written(tmp_path / "out")


def test_cli_reports_a_config_error_and_exits_2(tmp_path):
    config_path = write_config(tmp_path / "c.yaml", sources=[parquet_source("p", tmp_path / "p.parquet")],
                               output_dir=tmp_path / "out", dedup={"fuzzy": {"thresholdd": 0.9}})
    done = factory_cli("run", str(config_path))
    assert done.returncode == 2
    assert done.stderr.startswith("error:") and "dedup.fuzzy.thresholdd" in done.stderr
