"""python -m eval run: three checkpoints (a base, a model trained on the domain, a LoRA adapter) on every
suite, in this process (the default for small work without a GPU) and on Ray model actors with the same
numbers, and a loopback judge; one report, published atomically."""
from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest
import yaml

from conftest import published
from eval.__main__ import main
from eval.checkpoints import checkpoint_digest
from eval.config import CheckpointConfig
from eval_fixtures import GENERAL_TEXT, MC_PROMPT, models, question_rows, score, write_documents, write_table
from synth_helpers import endpoint, loopback  # noqa: F401  (fixture)
from train_fixtures import DOCUMENTS, publish_copy

ANSWER = re.compile(r"Answer 1:\n(.*)\n\nAnswer 2:\n(.*)\n\nReply", re.S)


def longer_answer_wins(body: dict) -> str:
    """A judge without position bias: the longer answer wins, equal lengths tie."""
    first, second = ANSWER.search(body["messages"][1]["content"]).groups()
    winner = "1" if len(first) > len(second) else "2" if len(second) > len(first) else "tie"
    return json.dumps({"winner": winner, "reason": "longer"})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return models(tmp_path_factory.mktemp("eval-run-models"))


def write_config(tmp_path, tiny, server, **overrides) -> str:
    """Every suite on the three checkpoints; ``server`` (None: judge disabled) judges."""
    domain = write_documents(tmp_path / "sets" / "domain.parquet", DOCUMENTS, "domain")
    questions = write_table(tmp_path / "sets" / "questions.parquet", question_rows())
    # training data with two planted leaks (a whole document, one question) and a 7-word near miss
    training = write_documents(tmp_path / "training" / "documents.parquet", [
        "unrelated text about gardens and the weather in spring. " + DOCUMENTS[2],
        "operators said " + " ".join(DOCUMENTS[3].split()[:7]) + " yesterday",
        "quiz: " + " ".join([question_rows()[0]["question"], *question_rows()[0]["choices"]]),
    ], "train")
    config = {
        "output_dir": str(tmp_path / "eval"),
        "checkpoints": [{"name": "base", "path": str(tiny["base"])}, {"name": "cpt", "path": str(tiny["trained"])},
                        {"name": "lora", "path": str(tiny["lora"])}],
        "ray": {"batch_size": 4, "concurrency": 1},
        "model": {"forward_batch_size": 4},
        "decoding": {"max_new_tokens": 6},
        "perplexity": {"context_length": 24, "stride": 12, "sets": {
            "domain": {"path": str(domain)},
            "general": {"path": str(write_documents(tmp_path / "sets" / "general.parquet", GENERAL_TEXT, "gen"))}}},
        "multiple_choice": {"prompt": MC_PROMPT, "sets": {"reactor": {"path": str(questions), "id_column": "id"}}},
        "generation": {"sets": {"title_to_text": {"path": str(domain), "prompt": "Title: {title}\nText:",
                                                  "reference_column": "text", "limit": 4}}},
        "judge": {"enabled": True, "endpoint": endpoint(server, model="judge"), "pairs": [["cpt", "base"], ["lora", "base"]],
                  "prompts": {"path": str(questions), "prompt_column": "question"}} if server else {"enabled": False},
        "decontamination": {"ngram": 8, "decontaminate": True, "training_data": [{"path": str(training)}]},
        **overrides,
    }
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


@pytest.mark.slow
def test_eval_run_reports_every_checkpoint_and_metric(tmp_path, tiny, loopback, ray_session, capsys):
    server = loopback(policy=longer_answer_wins)
    config = write_config(tmp_path, tiny, server)
    assert main(["run", config]) == 0
    printed = capsys.readouterr().out
    assert "ray.enabled: auto -> scoring in this process" in printed  # no GPU, small work: Ray would cost more
    assert all(printed.count(f"  {name}: loaded") == 1 for name in ("base", "cpt", "lora"))  # once for all suites
    out = published(tmp_path / "eval")
    assert f"report: {out}/report.md" in printed  # the run's own folder, which a later eval does not replace
    results = json.loads((out / "results.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())

    # the manifest names every checkpoint's path and hash
    assert [c["name"] for c in manifest["checkpoints"]] == ["base", "cpt", "lora"]
    for entry in manifest["checkpoints"]:
        assert entry["sha256"] == checkpoint_digest(CheckpointConfig(name=entry["name"], path=entry["path"]))
    assert manifest["checkpoints"][2]["base"] == str(tiny["base"])

    # decontamination: the planted document and question are removed, the near miss is kept
    assert results["decontamination"]["sets"]["perplexity/domain"]["contaminated"] == 1
    assert results["decontamination"]["sets"]["multiple_choice/reactor"]["contaminated"] == 1
    leaked = pq.read_table(out / "contamination.parquet").to_pylist()
    assert {(r["suite"], r["item_id"]) for r in leaked} >= {("perplexity", "domain-2"), ("multiple_choice", "q0")}
    ppl = results["perplexity"]
    assert ppl["domain"]["cpt"]["documents"] == len(DOCUMENTS) - 1
    assert results["multiple_choice"]["reactor"]["cpt"]["acc"]["n"] == len(question_rows()) - 1

    # the model trained on the domain: lower domain perplexity, every remaining answer right
    assert ppl["domain"]["cpt"]["perplexity"] < ppl["domain"]["base"]["perplexity"]
    assert results["multiple_choice"]["reactor"]["cpt"]["acc"]["accuracy"] == 1.0
    # the adapter really changes the base's scores
    assert ppl["domain"]["lora"]["perplexity"] != pytest.approx(ppl["domain"]["base"]["perplexity"])

    # the judge: both orders of every prompt sent, and a position-free judge is never inconsistent
    judge_prompts = len(question_rows())  # a bare question is shorter than the 8-gram: nothing to check
    assert results["decontamination"]["sets"]["judge/prompts"]["too_short_to_check"] == judge_prompts
    assert len(server.answered()) == 2 * 2 * judge_prompts
    verdicts = pq.read_table(out / "items" / "judge" / "cpt_vs_base" / "verdicts.parquet").to_pylist()
    expected = ["win" if len(v["answer_a"]) > len(v["answer_b"]) else "loss" if len(v["answer_a"]) < len(v["answer_b"])
                else "tie" for v in verdicts]
    pair = results["judge"]["cpt_vs_base"]
    assert (pair["wins"], pair["ties"], pair["losses"]) == tuple(expected.count(k) for k in ("win", "tie", "loss"))
    assert pair["inconsistent"] == 0 and pair["n"] == judge_prompts

    # the report lists every checkpoint and every metric
    report = (out / "report.md").read_text()
    for word in ("base", "cpt", "lora", "perplexity", "bits/byte", "acc_norm", "ROUGE-1", "ROUGE-2", "ROUGE-L",
                 "BLEU-4", "win rate", "inconsistent", "Decontamination", "reactor_operations"):
        assert word in report, word
    html = (out / "report.html").read_text()
    assert "<table>" in html and "cpt vs base" in html
    for plot in ("perplexity.png", "accuracy_reactor.png", "win_rates.png"):
        assert (out / "plots" / plot).stat().st_size > 1000
    assert "eval summary" in printed

    # a rerun of the same config on the same checkpoints is skipped; judging the same answers again is free
    server.reset_counts()
    assert main(["run", config]) == 0
    assert "nothing to do" in capsys.readouterr().out
    judge_only = write_config(tmp_path, tiny, server, perplexity={"enabled": False}, generation={"enabled": False},
                              multiple_choice={"enabled": False}, decontamination={"enabled": False})
    assert main(["run", judge_only, "--overwrite"]) == 0
    assert server.answered() == []
    assert json.loads((published(tmp_path / "eval") / "results.json").read_text())["judge"]["cpt_vs_base"] == pair

    # the same run on Ray model actors (one per checkpoint, kept across suites): the same numbers
    on_ray = write_config(tmp_path, tiny, server, output_dir=str(tmp_path / "eval-ray"), judge={"enabled": False},
                          ray={"enabled": True, "batch_size": 4, "concurrency": 1})
    capsys.readouterr()
    assert main(["run", on_ray]) == 0
    printed = capsys.readouterr().out
    assert all(printed.count(f"  {name}: loaded") == 1 for name in ("base", "cpt", "lora")), printed
    ray_results = json.loads((published(tmp_path / "eval-ray") / "results.json").read_text())
    for suite in ("perplexity", "multiple_choice", "generation"):
        assert ray_results[suite] == results[suite], suite
    assert ray_results["decontamination"]["sets"] == {name: counts for name, counts in
                                                      results["decontamination"]["sets"].items() if name != "judge/prompts"}


def test_bad_input_is_named_before_any_work(tmp_path, tiny, loopback, capsys):
    server = loopback(policy=longer_answer_wins)
    missing = write_config(tmp_path, tiny, server, checkpoints=[{"name": "x", "path": str(tmp_path / "nowhere")}],
                           judge={"enabled": False})
    assert main(["run", missing]) == 2
    assert "checkpoints[0] (x).path" in capsys.readouterr().err

    bad_rows = question_rows()
    bad_rows[1]["answer"] = 7
    write_table(tmp_path / "sets" / "bad.parquet", bad_rows)
    config = yaml.safe_load(open(write_config(tmp_path, tiny, server)))
    config["multiple_choice"]["sets"]["reactor"]["path"] = str(tmp_path / "sets" / "bad.parquet")
    config["ray"]["enabled"] = False
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err
    assert "bad.parquet: row 1: answer=7" in err

    config["multiple_choice"]["sets"]["reactor"]["question_column"] = "query"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(tmp_path / "bad.yaml")]) == 2
    assert "missing column(s) ['query']" in capsys.readouterr().err
    assert not (tmp_path / "eval").exists()

    config["judge"]["pairs"] = [["cpt", "dpo"]]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(tmp_path / "bad.yaml")]) == 2
    assert "'dpo' is not a checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("window, named", [
    ({"context_length": 64, "stride": 128}, ["perplexity.stride (128)", "perplexity.context_length (64)"]),
    ({"context_length": 1024, "stride": 512}, ["perplexity.context_length (1024)", "checkpoints[0] (base)", "256"]),
])
def test_a_perplexity_window_that_cannot_work_is_refused_before_any_model_loads(tmp_path, tiny, window, named, capsys,
                                                                               monkeypatch):
    import eval.scorers

    def no_loading(*args):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(eval.scorers, "load_model", no_loading)
    config = write_config(tmp_path, tiny, None, judge={"enabled": False},
                          perplexity={"sets": {"domain": {"path": str(tmp_path / "sets" / "domain.parquet")}}, **window})
    assert main(["run", config]) == 2
    err = capsys.readouterr().err
    assert all(name in err for name in named), err
    assert not (tmp_path / "eval").exists()  # nothing written, not even an unfinished run folder


def test_a_set_that_decontamination_empties_is_reported_not_scored(tmp_path, tiny, capsys):
    training = write_documents(tmp_path / "training" / "everything.parquet", DOCUMENTS, "train")
    config = write_config(tmp_path, tiny, None, multiple_choice={"enabled": False}, generation={"enabled": False},
                          perplexity={"sets": {"domain": {"path": str(tmp_path / "sets" / "domain.parquet")}}},
                          decontamination={"ngram": 8, "decontaminate": True, "training_data": [{"path": str(training)}]})
    assert main(["run", config]) == 0
    assert "decontamination removed every item of perplexity/domain: it is not scored" in capsys.readouterr().out
    results = json.loads((published(tmp_path / "eval") / "results.json").read_text())
    assert results["decontamination"]["sets"]["perplexity/domain"]["contaminated"] == len(DOCUMENTS)
    assert "perplexity" not in results


def test_checkpoints_named_by_their_published_output_are_read_in_its_current_run(tmp_path, tiny):
    """A training stage publishes ``<out>/runs/<id>`` behind ``CURRENT``, and an adapter may name such an output as
    its base: eval names ``<out>``, checks, hashes and scores the current run, and a new version is a new hash."""
    import shutil

    import pyarrow as pa

    from eval.checkpoints import check_checkpoint, tokenizer_dir

    base = publish_copy(tiny["base"], tmp_path / "base-model")
    adapter = shutil.copytree(tiny["lora"], tmp_path / "adapter")
    settings = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**settings, "base_model_name_or_path": str(base)}))
    lora = publish_copy(adapter, tmp_path / "lora-model")
    checkpoint = CheckpointConfig(name="lora", path=str(lora))

    check_checkpoint(checkpoint, "checkpoints[0] (lora)")  # <out> itself holds only CURRENT and runs/
    assert tokenizer_dir(checkpoint) == str(published(base))  # the adapter has none: its base's run's
    items = pa.table({"item_id": ["d0"], "text": [DOCUMENTS[0]]})
    settings = dict(context_length=None, stride=512, add_special_tokens=True)
    assert score(lora, "perplexity", settings, items).equals(score(tiny["lora"], "perplexity", settings, items))

    digest = checkpoint_digest(checkpoint)
    assert digest == checkpoint_digest(CheckpointConfig(name="lora", path=str(published(lora))))
    publish_copy(tiny["base"], base)  # the base published again: the adapter now applies to a new version
    assert checkpoint_digest(checkpoint) != digest


def test_a_retrained_checkpoint_is_evaluated_again(tmp_path, tiny, capsys):
    """A rerun on unchanged checkpoints is skipped; once a checkpoint is trained again (new weights at the same
    path, a new hash) the same command evaluates again, and only that checkpoint's numbers move."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    trained = shutil.copytree(tiny["trained"], tmp_path / "cpt-model")
    config = write_config(tmp_path, {**tiny, "trained": trained}, None, multiple_choice={"enabled": False},
                          generation={"enabled": False}, decontamination={"enabled": False})
    assert main(["run", config]) == 0
    before = json.loads((published(tmp_path / "eval") / "manifest.json").read_text())
    capsys.readouterr()
    assert main(["run", config]) == 0 and "nothing to do" in capsys.readouterr().out

    model = AutoModelForCausalLM.from_pretrained(trained)
    with torch.no_grad():  # trained a little more: every weight moves
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    model.save_pretrained(trained)
    assert main(["run", config]) == 0
    assert "nothing to do" not in capsys.readouterr().out
    after = json.loads((published(tmp_path / "eval") / "manifest.json").read_text())
    assert after["run_id"] != before["run_id"]
    hashes = {run["run_id"]: {c["name"]: c["sha256"] for c in run["checkpoints"]} for run in (before, after)}
    old, new = hashes[before["run_id"]], hashes[after["run_id"]]
    assert new["cpt"] != old["cpt"] and new["base"] == old["base"] and new["lora"] == old["lora"]
    results = json.loads((published(tmp_path / "eval") / "results.json").read_text())["perplexity"]["domain"]
    runs = sorted((tmp_path / "eval" / "runs").iterdir())
    earlier = json.loads((runs[0] / "results.json").read_text())["perplexity"]["domain"]
    assert results["base"] == earlier["base"] and results["cpt"] != earlier["cpt"]
