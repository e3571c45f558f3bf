"""Eval's inputs on object storage (a real S3 API server on loopback): eval sets and decontamination's
training data given as s3:// URIs read the same items, and find the same overlaps, as the same files on local
disk; a bad URI is named with its config key."""
from __future__ import annotations

import pytest
from conftest import PARAGRAPHS
from eval_fixtures import MMLU_SAMPLE, in_process, write_table
from prepare_corpus import write_factory_output
from s3_server import s3, upload  # noqa: F401 (the fixture)

from core.errors import InputError
from eval.config import ChoiceSetConfig, DecontaminationConfig, TextSetConfig
from eval.contamination import find_contamination
from eval.items import choice_items, text_items


def test_eval_sets_on_s3_give_the_same_items_as_on_local_disk(tmp_path, s3):  # noqa: F811
    endpoint, _ = s3
    mmlu = upload(endpoint, MMLU_SAMPLE, "eval/mmlu/part-0.parquet")
    remote = choice_items("cs", ChoiceSetConfig(path=mmlu.rsplit("/", 1)[0], id_column="id"), 1000)
    assert remote.equals(choice_items("cs", ChoiceSetConfig(path=str(MMLU_SAMPLE), id_column="id"), 1000))
    assert remote.num_rows == 40

    # a published factory-style output on s3: its current run's documents/ are the perplexity set
    write_factory_output("s3://corpus/eval/factory", PARAGRAPHS[:2], PARAGRAPHS[2:4])
    texts = text_items("news", TextSetConfig(path="s3://corpus/eval/factory"), 1000)
    assert texts.column("item_id").to_pylist() == ["d0", "d1", "g0", "g1"]
    assert texts.column("text").to_pylist() == PARAGRAPHS[:4]


def test_a_missing_column_or_object_on_s3_names_the_uri_and_the_key(tmp_path, s3):  # noqa: F811
    endpoint, _ = s3
    uri = upload(endpoint, MMLU_SAMPLE, "eval/renamed/part-0.parquet")
    with pytest.raises(InputError) as missing:
        choice_items("cs", ChoiceSetConfig(path=uri, question_column="prompt"), 1000)
    assert str(missing.value).startswith(f"multiple_choice.sets.cs: {uri}: missing column(s) ['prompt'] "
                                         "(multiple_choice.sets.cs.question_column)")
    with pytest.raises(InputError) as absent:
        text_items("news", TextSetConfig(path="s3://corpus/eval/nothing-here"), 1000)
    assert str(absent.value) == "perplexity.sets.news.path: s3://corpus/eval/nothing-here does not exist"


def test_decontamination_reads_training_data_on_s3(tmp_path, s3):  # noqa: F811
    endpoint, _ = s3
    items = choice_items("cs", ChoiceSetConfig(path=str(MMLU_SAMPLE), id_column="id"), 1000)
    planted = items.to_pylist()[0]
    words = " ".join([planted["question"], *planted["choices"]]).split()[:14]
    rows = [{"id": f"doc-{i}", "text": text} for i, text in enumerate(PARAGRAPHS)]
    rows.append({"id": "doc-planted", "text": "Intro. " + " ".join(words) + " end."})
    training = upload(endpoint, write_table(tmp_path / "train.parquet", rows), "eval/training/part-0.parquet")
    config = DecontaminationConfig(enabled=True, ngram=13, decontaminate=True, batch_size=4, in_process_max_rows=0,
                                   training_data=[{"path": training}])

    found, counts = find_contamination({("multiple_choice", "cs"): items}, config, in_process())

    assert [(r["item_id"], r["training_id"]) for r in found.to_pylist()] == [(planted["item_id"], "doc-planted")]
    assert counts["multiple_choice/cs"]["contaminated"] == 1

    config.training_data[0].path = "s3://no-such-bucket/training"
    with pytest.raises(InputError) as error:
        find_contamination({("multiple_choice", "cs"): items}, config, in_process())
    assert str(error.value).startswith("decontamination.training_data.path: s3://no-such-bucket/training: "
                                       "the bucket 'no-such-bucket' does not exist")
