"""The recipe's config and lineage rules, without running any step: wiring keys belong to the recipe,
``@STEP`` references resolve to step outputs, and a step is current only while its output and its
external inputs are unchanged."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO, published
from train_fixtures import publish_copy

from core.errors import ConfigError
from core.manifest import file_fingerprint
from core.publish import read_finished_manifest
from recipe.config import load_recipe_config
from recipe.lineage import RecipeManifest
from recipe.runner import run_recipe
from recipe.steps import STEP_NAMES, Wiring, resolve_references, steps_to_run


def recipe_file(tmp_path: Path, **changes) -> Path:
    config = yaml.safe_load((REPO / "configs/recipe-tiny.yaml").read_text())
    config.update({"storage_path": str(tmp_path / "store"), **changes})
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("name", ["recipe-tiny.yaml", "recipe-cluster.yaml"])
def test_example_recipes_load(name):
    recipe = load_recipe_config(REPO / "configs" / name)
    assert Path(recipe.storage).is_absolute()


def test_a_wired_key_in_the_users_section_is_an_error_naming_it(tmp_path):
    config = yaml.safe_load((REPO / "configs/recipe-tiny.yaml").read_text())
    config["train"]["sft"]["model"] = {"path": "/somewhere/else"}
    recipe = load_recipe_config(recipe_file(tmp_path, train=config["train"]))
    with pytest.raises(ConfigError, match=r"train\.sft\.model\.path: set by the recipe"):
        run_recipe(recipe)
    assert not (tmp_path / "store" / "factory").exists()  # refused before any work


def test_every_steps_config_is_validated_before_the_first_step_runs_with_every_problem_named(tmp_path, capsys):
    """A misspelt key in a late step (train.cpt) fails before the factory runs, named as the recipe spells it and
    with the recipe's file; every problem of every step in one error, not only the first."""
    from recipe.__main__ import main

    config = yaml.safe_load((REPO / "configs/recipe-tiny.yaml").read_text())
    config["train"]["cpt"]["optim"]["learning_rat"] = 1e-3
    config["train"]["common"]["run"]["save_stepz"] = 6
    config["factory"]["limits"] = {"max_charz": 10}
    config["eval"]["perplexity"]["context_length"] = "long"
    path = recipe_file(tmp_path, factory=config["factory"], train=config["train"], eval=config["eval"])
    assert main(["run", str(path)]) == 2
    error = capsys.readouterr().err
    assert f"{path}: 4 problem(s) found before any step ran" in error
    for problem in ("train.cpt.optim.learning_rat: unknown key", "train.common.run.save_stepz: unknown key",
                    "factory.limits.max_charz: unknown key", "eval.perplexity.context_length: "):
        assert problem in error, problem
    assert error.count("save_stepz") == 1  # train.common is under every training stage: said once
    assert not (tmp_path / "store").exists()  # nothing ran, nothing published


def test_a_valid_recipe_is_not_refused_for_outputs_its_steps_will_write(tmp_path):
    """The checks before any step accept a model, tokenizer or data path that an earlier step will publish."""
    from recipe.lineage import RecipeManifest
    from recipe.runner import check_every_step

    recipe = load_recipe_config(recipe_file(tmp_path))
    check_every_step(steps_to_run(recipe), recipe, RecipeManifest(recipe))  # raises on any problem


def test_step_references_resolve_to_outputs_and_unknown_steps_are_named(tmp_path):
    recipe = load_recipe_config(recipe_file(tmp_path))
    wiring = Wiring(recipe, {})
    resolved = resolve_references({"a": ["@prepare/tokenizer"], "b": "@factory", "c": "plain"}, wiring, "eval")
    store = Path(recipe.storage)
    assert resolved == {"a": [str(store / "prepare" / "tokenizer")], "b": str(store / "factory"),
                        "c": "plain"}
    # once prepare has published, a path inside it is the current run's: a file read directly, not an output
    (tmp_path / "staged" / "tokenizer").mkdir(parents=True)
    publish_copy(tmp_path / "staged", store / "prepare")
    assert resolve_references("@prepare/tokenizer", wiring, "eval") == str(published(store / "prepare") / "tokenizer")
    assert resolve_references("@prepare", wiring, "eval") == str(store / "prepare")  # its job resolves it
    with pytest.raises(ConfigError, match=r"eval\.sets\.x: '@prepar' names no recipe step"):
        resolve_references({"sets": {"x": "@prepar"}}, wiring, "eval")


def test_recipe_level_errors(tmp_path):
    with pytest.raises(ConfigError, match="exactly one of base_model.path"):
        load_recipe_config(recipe_file(tmp_path, base_model={"path": "m", "init": {}}))
    with pytest.raises(ConfigError, match="state_dir: s3://bucket/state: must be a local directory"):
        load_recipe_config(recipe_file(tmp_path, storage_path="s3://bucket/recipe", state_dir="s3://bucket/state"))
    recipe = load_recipe_config(recipe_file(tmp_path))
    with pytest.raises(ConfigError, match="--from train_spt: not a step"):
        run_recipe(recipe, start_at="train_spt")
    with pytest.raises(ConfigError, match=r"\[1/10\] factory: has no published output yet"):
        run_recipe(recipe, only="eval")


def test_a_pretrained_base_model_needs_no_step(tmp_path):
    recipe = load_recipe_config(recipe_file(tmp_path, base_model={"path": "Qwen/Qwen2.5-0.5B"}))
    names = [s.name for s in steps_to_run(recipe)]
    assert names == [n for n in STEP_NAMES if n != "base_model"]
    assert Wiring(recipe, {}).output("base_model") == "Qwen/Qwen2.5-0.5B"


def test_a_step_stops_being_current_when_its_output_or_an_external_input_changes(tmp_path):
    recipe = load_recipe_config(recipe_file(tmp_path))
    corpus = tmp_path / "corpus.parquet"
    corpus.write_bytes(b"first")
    output = Path(recipe.storage) / "factory"
    (tmp_path / "staged").mkdir()
    run_id = read_finished_manifest(publish_copy(tmp_path / "staged", output))["run_id"]
    lineage = RecipeManifest(recipe)
    entry = lineage.record("factory", key="k1", config_file=tmp_path / "f.yaml", output=str(output), upstream={},
                           manifest={"run_id": run_id, "inputs": [file_fingerprint(corpus)]}, facts={}, wall_s=1.0)
    assert entry["run_path"] == str(published(output))  # the run's own folder, readable after a newer run
    reopened = RecipeManifest(recipe)  # the record survives the process
    assert reopened.is_current("factory", "k1")
    assert not reopened.is_current("factory", "k2")  # another config or upstream
    os.utime(corpus, ns=(1, 1))
    assert reopened.is_current("factory", "k1")  # a fresh copy of the same bytes (as ray job submit unpacks)
    corpus.write_bytes(b"fir5t")
    os.utime(corpus, ns=(2, 2))
    assert not reopened.is_current("factory", "k1")  # the corpus changed, same size
    corpus.write_bytes(b"second, longer")
    assert not reopened.is_current("factory", "k1")
    corpus.write_bytes(b"first")
    assert reopened.is_current("factory", "k1")
    publish_copy(tmp_path / "staged", output)
    assert not reopened.is_current("factory", "k1")  # another run published over it
    shutil.rmtree(output)
    assert not reopened.is_current("factory", "k1")  # its output was deleted


def test_dpo_trains_on_reviewed_pairs_once_annotators_decided_and_on_judge_approved_ones_before(tmp_path):
    from recipe.runner import step_config
    from recipe.steps import TrainDpoStep

    recipe = load_recipe_config(recipe_file(tmp_path))
    unreviewed = step_config(TrainDpoStep(), recipe, Wiring(recipe, {"review": {"facts": {"dpo_pairs": "judge_approved"}}}))
    assert unreviewed["data"]["train"] == str(Path(recipe.storage) / "synth_preferences")
    assert unreviewed["dpo"]["review_status"] is None  # every triple the judge kept
    reviewed = step_config(TrainDpoStep(), recipe, Wiring(recipe, {"review": {"facts": {"dpo_pairs": "reviewed"}}}))
    assert reviewed["data"]["train"] == str(Path(recipe.storage) / "review")
    assert reviewed["dpo"]["review_status"] == ["approved"]
    assert reviewed["model"]["path"] == str(Path(recipe.storage) / "models" / "sft")


def test_the_review_step_publishes_a_run_naming_the_judge_approved_pairs_when_nobody_has_decided(tmp_path):
    from quality.review.export import ExportConfig
    from quality.review.sqlite_store import SqliteReviewStore
    from quality.review.unreviewed import publish_unreviewed

    (tmp_path / "staged").mkdir()
    preferences = publish_copy(tmp_path / "staged", tmp_path / "synth_preferences")
    store = SqliteReviewStore(str(tmp_path / "reviews.sqlite"))  # the step has loaded the pairs into it
    store.load_items([{"id": f"p{i}", "prompt": "q", "chosen": "a", "rejected": "b"} for i in range(7)], overlap=1)
    config = ExportConfig(db=str(tmp_path / "reviews.sqlite"), output_dir=str(tmp_path / "review"))
    manifest = publish_unreviewed(config, str(preferences), store.snapshot().facts)
    on_disk = json.loads((published(tmp_path / "review") / "manifest.json").read_text())
    assert on_disk["run_id"] == manifest["run_id"] and on_disk["dpo_pairs"] == "judge_approved"
    assert on_disk["items"] == 7 and on_disk["decisions"] == 0
    assert on_disk["review_db"]["items"] == 7 and on_disk["inputs"] == []  # described from inside SQLite, not hashed
    # the exact preferences run DPO uses, by id and by its own folder (still there after synth runs again)
    pairs = on_disk["preferences_run"]
    assert pairs["run_id"] == read_finished_manifest(preferences)["run_id"]
    assert pairs["run_path"] == str(published(preferences))
    assert [p.name for p in (tmp_path / "review" / "runs").iterdir()] == [manifest["run_id"]]  # nothing else left


def test_a_first_run_with_no_server_at_a_synth_endpoint_fails_before_any_work(tmp_path):
    from ray_cluster import free_ports

    synth = yaml.safe_load((REPO / "configs/recipe-tiny.yaml").read_text())["synth"]
    synth["endpoints"]["local"]["base_url"] = f"http://127.0.0.1:{free_ports(1)[0]}/v1"  # nothing listens
    recipe = load_recipe_config(recipe_file(tmp_path, synth=synth))
    with pytest.raises(ConfigError, match=r"synth.endpoints: nothing answers at local \(http://127.0.0.1:\d+/v1\)"):
        run_recipe(recipe)
    assert not (tmp_path / "store" / "factory").exists()


def test_a_deleted_output_reruns_its_step_and_the_steps_after_it_only(tmp_path, monkeypatch):
    """The runner's skip rules on the real step graph, the jobs replaced by stand-ins that publish a new run each
    time (the real jobs under ray job submit: tests/cluster/test_recipe_job.py)."""
    from recipe import runner

    recipe = load_recipe_config(recipe_file(tmp_path))
    ran: list[str] = []

    (tmp_path / "staged").mkdir()

    def publish(step, config, wiring):
        manifest = read_finished_manifest(publish_copy(tmp_path / "staged", Path(wiring.output(step.name))))
        if step.name == "review":  # no annotator decided: a run naming the judge-approved pairs
            manifest["dpo_pairs"] = "judge_approved"
        ran.append(step.name)
        return manifest

    for step in steps_to_run(recipe):
        monkeypatch.setattr(type(step), "run", publish)
        monkeypatch.setattr(type(step), "load", lambda self, path: path)
    monkeypatch.setattr(runner, "check_endpoints", lambda recipe: None)
    monkeypatch.setattr(runner, "init_ray", lambda config: None)

    def run_once(**selection) -> list[str]:
        ran.clear()
        run_recipe(recipe, **selection)
        return list(ran)

    assert run_once(only="factory") == ["factory"]  # the first step alone: the later ones are not its inputs
    assert run_once(only="prepare") == ["prepare"]
    assert run_once() == STEP_NAMES[2:]
    assert run_once() == []  # everything current
    shutil.rmtree(Path(recipe.storage) / "models" / "dpo")
    assert run_once() == ["train_dpo", "eval"]
    shutil.rmtree(Path(recipe.storage) / "prepare")
    assert run_once() == ["prepare", "base_model", "train_cpt", "train_sft", "train_dpo", "eval"]


def test_a_steps_ray_key_the_recipes_ray_cannot_honour_is_warned_about_once_naming_the_recipes_key(
        tmp_path, monkeypatch, ray_session):
    """Every job finds the recipe's Ray running: the factory's ray.num_cpus cannot apply and is named as the
    recipe file spells it; keys left to their defaults say nothing."""
    from core import progress, ray_runtime
    from core.ray_runtime import RayConfig, init_ray
    from recipe import runner

    cpus = int(ray_session.cluster_resources()["CPU"])
    tiny = yaml.safe_load((REPO / "configs/recipe-tiny.yaml").read_text())
    recipe = load_recipe_config(recipe_file(tmp_path, factory={**tiny["factory"], "ray": {"num_cpus": cpus + 1}}))

    def run_job(step, recipe, *args):  # a job's own init_ray, twice as eval's judge pool calls it again
        ray_keys = {k: v for k, v in (step.section(recipe).get("ray") or {}).items() if k in RayConfig.model_fields}
        init_ray(RayConfig(**ray_keys))
        init_ray(RayConfig(**ray_keys))
        return "ran"

    monkeypatch.setattr(runner, "check_endpoints", lambda recipe: None)
    monkeypatch.setattr(runner, "run_or_skip_step", run_job)
    monkeypatch.setattr(ray_runtime, "_warned", set())
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    Path(recipe.storage).mkdir(parents=True)  # where the summary goes: the stand-in jobs write nothing
    lines: list[str] = []
    with progress.lines_to(lines.append):
        run_recipe(recipe)
    assert [line for line in lines if "ignored" in line] == [
        f"factory.ray.num_cpus: {cpus + 1} ignored: Ray is already running with {cpus} CPUs "
        "(the recipe's ray: section, or the cluster, decides)"]
