"""Decontamination finds the n-gram overlaps planted in factory documents, SFT and preference data,
and no others."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from core import progress
from eval.config import ChoiceSetConfig, DecontaminationConfig
from eval.contamination import find_contamination
from eval.items import choice_items
from eval_fixtures import MMLU_SAMPLE, in_process, preset_section, write_table
from train_fixtures import write_preferences, write_sft
from conftest import PARAGRAPHS

IN_PROCESS = in_process()


def words_of(row: dict) -> list[str]:
    return " ".join([row["question"], *row["choices"]]).lower().replace("?", " ").split()


def test_planted_overlaps_are_found_and_nothing_else(tmp_path, monkeypatch):
    items = choice_items("cs", ChoiceSetConfig(path=str(MMLU_SAMPLE), id_column="id"), 1000)
    rows = items.to_pylist()
    long_enough = [r for r in rows if len(words_of(r)) >= 20 and all(w.isalnum() for w in words_of(r)[:14])]
    in_document, in_sft, near_miss = long_enough[0], long_enough[1], long_enough[2]
    documents = write_table(tmp_path / "factory" / "documents" / "part-0.parquet", [
        {"id": f"doc-{i}", "text": text, "source": "news"} for i, text in enumerate(PARAGRAPHS)
    ] + [
        {"id": "doc-planted", "text": PARAGRAPHS[0] + " " + " ".join(words_of(in_document)[:13]).upper() + " end."},
        # 12 words only: below the 13-gram, so not contamination
        {"id": "doc-near-miss", "text": "Intro. " + " ".join(words_of(near_miss)[:12]) + " and more words follow"},
    ])
    (tmp_path / "factory" / "manifest.json").write_text(json.dumps({"run_id": "r"}))
    sft = write_sft(tmp_path / "sft.parquet")
    table = pq.read_table(sft).to_pylist()
    table[0]["messages"][2]["content"] = "as the exam asks: " + " ".join(words_of(in_sft)[2:15]) + "."
    write_table(sft, table)
    preferences = write_preferences(tmp_path / "preferences.parquet")
    config = DecontaminationConfig(enabled=True, ngram=13, decontaminate=True, batch_size=2, in_process_max_rows=0,
                                   training_data=[
        {"path": str(tmp_path / "factory")}, {"path": str(sft)}, {"path": str(preferences)}])

    found, counts = find_contamination({("multiple_choice", "cs"): items}, config, IN_PROCESS)

    flagged = {r["item_id"]: r for r in found.to_pylist()}
    assert set(flagged) == {in_document["item_id"], in_sft["item_id"]}
    assert flagged[in_document["item_id"]]["training_id"] == "doc-planted"
    assert flagged[in_sft["item_id"]]["training_id"] == "sft-0"
    assert counts["multiple_choice/cs"] == {"items": 40, "contaminated": 2, "too_short_to_check": 0}

    # with Ray on, training data this small is still scanned here: a Ray Data pipeline takes longer to start
    import eval.contamination

    def no_ray(*args):
        raise AssertionError("Ray started for a few rows")

    monkeypatch.setattr(eval.contamination, "init_ray", no_ray)
    said = []
    small = config.model_copy(update={"in_process_max_rows": preset_section(DecontaminationConfig, "decontamination")
                                      .in_process_max_rows})
    with progress.lines_to(said.append):
        again, _ = find_contamination({("multiple_choice", "cs"): items}, small, in_process(enabled=True))
    assert again.equals(found) and all("in this process" in line for line in said)


@pytest.mark.parametrize("versioned", [True, False], ids=["runs-behind-CURRENT", "layout-before-versions"])
def test_a_prepare_run_named_as_an_eval_set_is_read_as_its_held_out_split_not_its_training_documents(tmp_path,
                                                                                                     versioned):
    import pyarrow as pa

    from core.publish import write_pointer
    from eval.items import read_rows

    output = tmp_path / "prepare"
    run = output / "runs" / "r" if versioned else output  # the config names the output either way
    for folder, ids in (("documents", ["train-1", "train-2"]), ("validation", ["held-out-1"])):
        (run / folder).mkdir(parents=True)
        pq.write_table(pa.table({"id": ids, "text": [f"text of {i}" for i in ids]}), run / folder / "part-0.parquet")
    (run / "manifest.json").write_text('{"run_id": "r"}')
    if versioned:
        write_pointer(output, "r")
    rows = read_rows(str(output), {"id": "id", "text": "text"}, "perplexity.sets.domain", None, 100)
    assert rows.column("id").to_pylist() == ["held-out-1"]
