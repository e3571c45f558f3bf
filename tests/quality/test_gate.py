"""The gate as users meet it: `python -m quality validate` (exit codes, Data Docs, the manifest entry),
and a factory run whose output breaks its suite, which publishes nothing."""
from __future__ import annotations

import json

import pytest
import yaml
from conftest import PARAGRAPHS, parquet_source, published, write_config, write_parquet
from quality_samples import conversation, documents, publish, replace_row, sft

from core.errors import QualityGateError
from core.publish import read_finished_manifest
from quality.__main__ import main


def test_cli_passes_good_data_and_records_the_verdict(tmp_path, capsys):
    root = publish(tmp_path / "run", {"sft": sft(40)}, {})
    assert main(["validate", "sft", str(root)]) == 0
    out = capsys.readouterr().out
    assert "quality gate (sft)" in out and "passed" in out
    run = published(root)  # the current run is what was validated, and its manifest records the verdict
    manifest = json.loads((run / "manifest.json").read_text())
    entry = manifest["quality"]
    assert entry["success"] and entry["kind"] == "sft" and entry["rows"] == 40
    runs_on = {e["name"]: e["runs_on"] for e in entry["expectations"]}
    assert runs_on["unique_ids"].startswith("whole dataset") and runs_on["within_context"].startswith("hash sample")
    assert (run / "quality" / "index.html").is_file() and (run / "quality" / "charts" / "task_type_mix.png").is_file()
    assert {"quality/index.html", "sft/part-0.parquet"} <= {f["path"] for f in manifest["files"]}  # all it holds
    pages = list((run / "quality" / "validations").rglob("*.html"))
    assert any("sft_whole_dataset" in str(p) for p in pages) and any("sft_sample" in str(p) for p in pages)


def test_cli_fails_bad_data_naming_the_expectation_and_rows(tmp_path, capsys):
    table = replace_row(sft(40), 3, id="s2")
    # an empty answer: every column is filled, so only a look inside the messages finds it
    table = replace_row(table, 5, messages=[conversation(5)[0], {"role": "assistant", "content": ""}])
    root = publish(tmp_path / "run", {"sft": table}, {})
    docs = tmp_path / "elsewhere"
    assert main(["validate", "sft", str(root), "--docs-dir", str(docs)]) == 1
    out = capsys.readouterr().out
    assert "FAIL unique_ids" in out and "observed 1" in out and "s2 = s2" in out and str(docs) in out
    assert "FAIL not_empty.message_content" in out and "s5 (assistant message 2 is blank)" in out
    assert (docs / "index.html").is_file() and not (published(root) / "quality").exists()
    assert json.loads((published(root) / "manifest.json").read_text())["quality"]["success"] is False


def test_cli_bad_input_exits_2(tmp_path, capsys):
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    assert main(["validate", "documents", str(broken)]) == 2
    assert "broken.parquet: not a readable Parquet file" in capsys.readouterr().err
    assert main(["validate", "documents", str(tmp_path / "missing")]) == 2
    with pytest.raises(SystemExit) as info:
        main(["validate", "tweets", str(broken)])
    assert info.value.code == 2


def test_thresholds_come_from_the_config_file(tmp_path, capsys):
    root = publish(tmp_path / "run", {"documents": documents(30)}, {})
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump({"documents": {"text_chars": {"min": 1, "max": 20}}}))
    assert main(["validate", "documents", str(root), "--config", str(strict)]) == 1
    assert "FAIL chars.text" in capsys.readouterr().out
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump({"documents": {"text_charz": {"min": 1, "max": 20}}}))
    assert main(["validate", "documents", str(root), "--config", str(typo)]) == 2
    assert "documents.text_charz: unknown key" in capsys.readouterr().err


def factory_config(tmp_path, **sections):
    data = write_parquet(tmp_path / "docs.parquet", {"id": ["a", "b", "c"], "text": PARAGRAPHS[:3]})
    return write_config(tmp_path / "config.yaml", sources=[parquet_source("docs", data)], output_dir=tmp_path / "out",
                        dedup={"exact": {"enabled": False}, "fuzzy": {"enabled": False}}, **sections)


def test_a_factory_run_that_breaks_its_gate_publishes_nothing(tmp_path, run_factory, capsys):
    from factory.__main__ import main as factory_main
    from factory.config import load_factory_config
    from factory.factory_run import run_factory as run

    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump({"documents": {"text_chars": {"min": 1, "max": 100}}}))
    config = factory_config(tmp_path, quality={"config": str(strict)})
    with pytest.raises(QualityGateError, match="nothing was published"):
        run(load_factory_config(config))
    assert read_finished_manifest(tmp_path / "out") is None  # no CURRENT: readers find nothing
    failed_run = next((tmp_path / "out" / "runs").iterdir())  # kept for inspection
    manifest = json.loads((failed_run / "manifest.json").read_text())
    assert manifest["quality"]["success"] is False and (failed_run / "quality" / "index.html").is_file()
    failed = [e["name"] for e in manifest["quality"]["expectations"] if e["success"] is False]
    assert failed == ["chars.text"]
    # the command line: exit 1, the summary and where to look
    assert factory_main(["run", str(config)]) == 1
    captured = capsys.readouterr()
    assert "FAIL chars.text" in captured.out and "Data Docs:" in captured.err
    assert read_finished_manifest(tmp_path / "out") is None


def test_the_gate_can_be_switched_off(tmp_path, run_factory):
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump({"documents": {"text_chars": {"min": 1, "max": 100}}}))
    result = run_factory(factory_config(tmp_path, quality={"gate": False, "config": str(strict)}))
    assert result.kept_ids == {"a", "b", "c"} and "quality" not in result.manifest
    passing = run_factory(factory_config(tmp_path / "again"))
    assert passing.manifest["quality"]["success"] is True
    assert (published(passing.output_dir) / "quality" / "index.html").is_file()
