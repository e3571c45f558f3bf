"""`python -m synth` with its input on object storage (a real S3 API server on loopback): a factory output
published on s3:// feeds `synth sft`, SFT Parquet on s3:// feeds `synth preferences`, and an input missing a
column is refused before any request, naming the s3:// file and the config key."""
from __future__ import annotations

import pyarrow.parquet as pq
import yaml
from prepare_corpus import write_factory_output
from s3_server import s3, upload  # noqa: F401 (the fixture)
from synth_helpers import factory_documents, loopback, read_run, run_cli, sft_config  # noqa: F401 (fixture)

from test_synth_preferences import preferences_config, sft_input


def test_sft_reads_a_factory_output_published_on_s3(tmp_path, s3, loopback):  # noqa: F811
    server = loopback()
    documents = pq.read_table(factory_documents(tmp_path / "docs" / "documents.parquet", 2))
    write_factory_output("s3://corpus/synth/factory", documents.column("text").to_pylist(), [])
    config = sft_config(tmp_path, server, docs=2, input={"path": "s3://corpus/synth/factory"},
                        quality={"gate": False})  # the gate is tested elsewhere; the input is what matters here

    assert run_cli("sft", str(config)) == 0
    sft, rejects, _ = read_run(tmp_path / "out" / "sft", "sft")
    assert rejects.num_rows == 0 and set(sft.column("source_doc_id").to_pylist()) == {"d0", "d1"}
    texts = dict(zip(["d0", "d1"], documents.column("text").to_pylist()))
    for row in (r for r in sft.to_pylist() if r["variant"] == "plain"):  # grounded in the documents read from s3
        assert all(m["content"] in texts[row["source_doc_id"]] for m in row["messages"] if m["role"] == "assistant")


def test_preferences_read_their_sft_input_from_s3(tmp_path, s3, loopback):  # noqa: F811
    endpoint, _ = s3
    server = loopback()
    config = preferences_config(tmp_path, server, n=3)
    upload(endpoint, sft_input(tmp_path / "sft" / "part-0.parquet", 3), "synth/sft/part-0.parquet")
    settings = yaml.safe_load(open(config))
    settings["preferences"]["input"]["path"] = "s3://corpus/synth/sft"
    settings["quality"] = {"gate": False}
    open(config, "w").write(yaml.safe_dump(settings))

    assert run_cli("preferences", config) == 0
    prefs, _, _ = read_run(tmp_path / "out" / "prefs", "preferences")
    assert sorted(prefs.column("source_id").to_pylist()) == [f"doc-{i}/question_answering/plain" for i in range(3)]


def test_an_input_on_s3_missing_a_column_is_refused_before_any_request(tmp_path, s3, loopback, capsys):  # noqa: F811
    endpoint, _ = s3
    server = loopback()
    documents = pq.read_table(factory_documents(tmp_path / "docs" / "documents.parquet", 2)).drop_columns(["text"])
    pq.write_table(documents, tmp_path / "no-text.parquet")
    uri = upload(endpoint, tmp_path / "no-text.parquet", "synth/no-text/part-0.parquet")
    config = sft_config(tmp_path, server, input={"path": "s3://corpus/synth/no-text"})

    assert run_cli("sft", str(config)) == 2
    err = capsys.readouterr().err
    assert f"input.path: {uri}: missing column(s) ['text'] (input.text_column)" in err
    assert server.received == []  # checked before any work
