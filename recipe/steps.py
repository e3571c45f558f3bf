"""The recipe's steps, in order. Each step is its job's config (the user's section plus the keys that wire
it to earlier steps' outputs) and a call to the job's public run function; nothing here reaches into a
job's internals. ``facts`` pick, from the published manifest, the numbers the summary page shows.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from core import progress
from core.errors import ConfigError
from core.publish import resolve
from recipe.config import RecipeConfig


class Wiring:
    """Where each step publishes, and what the steps that already ran decided (e.g. which pairs DPO uses)."""

    def __init__(self, recipe: RecipeConfig, entries: dict[str, dict]):
        self.recipe, self.entries = recipe, entries

    def output(self, step: str) -> str:
        if step == "base_model" and self.recipe.base_model.path is not None:
            return self.recipe.base_model.path  # a pre-trained model: nothing to publish
        return self.recipe.at(*STEP_OUTPUTS.get(step, step).split("/"))

    def review_db(self) -> str:
        return str(Path(self.recipe.review.db).expanduser().resolve()) if self.recipe.review.db \
            else str(self.recipe.state / "reviews.sqlite")  # SQLite: on local disk, even with s3:// storage

    def synth_shared(self) -> dict:
        return {"endpoints": self.recipe.synth.endpoints, "cache_path": str(self.recipe.state / "synth.cache.sqlite")}

    def train_storage(self) -> str:
        return self.recipe.train_storage_path or self.recipe.at("train_checkpoints")


STEP_OUTPUTS = {"train_cpt": "models/cpt", "train_sft": "models/sft", "train_dpo": "models/dpo",
                "base_model": "models/base"}


SECTION_KEYS = {"synth_sft": "synth.sft", "synth_preferences": "synth.preferences", "train_cpt": "train.cpt",
                "train_sft": "train.sft", "train_dpo": "train.dpo", "base_model": "base_model.init"}


class Step:
    name: str
    needs: tuple[str, ...] = ()
    uses_endpoints = False  # calls the synth endpoints: the runner checks they answer before it runs

    @property
    def section_key(self) -> str:
        """Where the step's section sits in the recipe file."""
        return SECTION_KEYS.get(self.name, self.name)

    def section(self, recipe: RecipeConfig) -> dict:
        """The user's part of this step's config."""
        return getattr(recipe, self.name)

    def user_key(self, recipe: RecipeConfig, loc: tuple) -> str:
        """Key ``loc`` of the step's config as the recipe file spells it (``train.cpt.optim.learning_rat``)."""
        return ".".join([self.section_key, *map(str, loc)])

    def wiring(self, wiring: Wiring) -> dict:
        """The keys the recipe sets: output_dir and the upstream outputs this step reads."""
        return {"output_dir": wiring.output(self.name)}

    def state(self, wiring: Wiring) -> dict:
        """What, beyond the config and the upstream runs, makes this step's output stale (e.g. new reviews)."""
        return {}

    def keyed(self, config: dict, key: str) -> dict:
        """The config as run, given the step's key."""
        return config

    def load(self, path: Path):
        raise NotImplementedError

    def run(self, config, wiring: Wiring) -> dict:
        raise NotImplementedError

    def facts(self, manifest: dict) -> dict:
        return {}


class FactoryStep(Step):
    name = "factory"

    def load(self, path):
        from factory.config import load_factory_config
        return load_factory_config(path)

    def run(self, config, wiring):
        from factory.factory_run import run_factory
        return run_factory(config, overwrite=True)

    def facts(self, manifest):
        accounting = manifest.get("accounting", {})
        return {"documents_in": sum(s["in"] for s in accounting.values()),
                "documents_kept": sum(s["kept"] for s in accounting.values()),
                "documents_rejected": sum(s["rejected"] for s in accounting.values())}


class PrepareStep(Step):
    name, needs = "prepare", ("factory",)

    def wiring(self, wiring):
        wired = {"output_dir": wiring.output(self.name), "input_dir": wiring.output("factory")}
        base = wiring.recipe.base_model.path
        if base is not None and not wiring.recipe.prepare.get("tokenizer", {}).get("path"):
            wired["tokenizer"] = {"path": base}  # pack with the model's own tokenizer
        return wired

    def load(self, path):
        from factory.prepare.config import load_prepare_config
        return load_prepare_config(path)

    def run(self, config, wiring):
        from factory.prepare.prepare_run import run_prepare
        return run_prepare(config, overwrite=True)

    def facts(self, manifest):
        outputs = manifest.get("outputs", {})
        return {"packed_rows": outputs.get("train", {}).get("rows"),
                "validation_rows": outputs.get("validation", {}).get("rows"),
                "domain_token_share": manifest.get("mixing", {}).get("achieved_domain_token_fraction"),
                "mixing_warning": manifest.get("mixing", {}).get("warning")}


def check_endpoints(recipe: RecipeConfig) -> None:
    """Every synth endpoint answers, or an error naming it: better than a run of rejects after all retries."""
    from core.llm.reachable import unreachable_endpoints

    if down := unreachable_endpoints(recipe.synth.endpoints):
        raise ConfigError("synth.endpoints: nothing answers at " + "; ".join(down) + ". Start the server (vLLM, "
                          "Ollama; for a dry run the scripted one: python -m synth.testing.openai_server --port 8000) "
                          "or point base_url at it")


class SynthStep(Step):
    job: str
    folder: str
    uses_endpoints = True

    def section(self, recipe):
        return getattr(recipe.synth, self.job)

    def load(self, path):
        from synth.config import load_synth_config
        return load_synth_config(path, self.job)

    def run(self, config, wiring):
        from synth.synth_run import run_synth
        return run_synth(self.job, config, overwrite=True)

    def facts(self, manifest):
        outputs = manifest.get("outputs", {})
        return {f"{self.folder}_rows": outputs.get(self.folder, {}).get("rows"),
                "rejects": outputs.get("rejects", {}).get("rows")}


class SynthSftStep(SynthStep):
    name, needs, job, folder = "synth_sft", ("factory",), "sft", "sft"

    def wiring(self, wiring):
        return {"output_dir": wiring.output(self.name), "input": {"path": wiring.output("factory")},
                **wiring.synth_shared()}


class SynthPreferencesStep(SynthStep):
    name, needs, job, folder = "synth_preferences", ("synth_sft",), "preferences", "preferences"

    def wiring(self, wiring):
        return {"output_dir": wiring.output(self.name), "preferences": {"input": {"path": wiring.output("synth_sft")}},
                **wiring.synth_shared()}


class ReviewStep(Step):
    """Loads the judged pairs into the review database; exports the reviewed set when annotators have decided
    any pair. With no decision yet, DPO uses the judge-approved pairs (said loudly, and published as a run that
    names them), unless reviews are required."""
    name, needs = "review", ("synth_preferences",)

    def section(self, recipe):
        return {}

    def wiring(self, wiring):
        return {"db": wiring.review_db(), "output_dir": wiring.output(self.name)}

    def load(self, path):
        from core.config import load_layered
        from quality.review.export import ExportConfig
        return load_layered(ExportConfig, path)

    def state(self, wiring: Wiring) -> dict:
        """What the review database holds now: new decisions make the step run again."""
        if not Path(wiring.review_db()).is_file():
            return {"decisions": 0, "last": None}
        from quality.review.sqlite_store import SqliteReviewStore

        held = SqliteReviewStore(wiring.review_db(), key="review.db").facts()
        return {"decisions": held["decisions"], "last": held["last_decision_at"]}

    def run(self, config, wiring):
        from quality.review.export import export
        from quality.review.loading import load
        from quality.review.sqlite_store import SqliteReviewStore

        store = SqliteReviewStore(config.db, key="review.db")
        added, existing = load(store, wiring.output("synth_preferences"), wiring.recipe.review.overlap)
        held = store.facts()
        if held["decisions"]:
            manifest = export(store, config, overwrite=True)
            return {**manifest, "dpo_pairs": "reviewed", "items": added + existing}
        if wiring.recipe.review.require_reviews:
            raise ConfigError(f"review: no pair in {config.db} has a decision yet and review.require_reviews is true; "
                              f"serve the review app (python -m quality review serve --db {config.db}), then run the "
                              "recipe again")
        banner = "!" * 100
        progress.warn(f"{banner}\nNO HUMAN REVIEWS in {config.db} ({added + existing} pairs loaded): DPO trains on "
                      "the JUDGE-APPROVED pairs of synth_preferences, unreviewed.\nReview them with `python -m quality "
                      f"review serve --db {config.db}`, then run the recipe again: review, DPO and eval "
                      f"rerun.\n{banner}")
        from quality.review.unreviewed import publish_unreviewed
        return publish_unreviewed(config, wiring.output("synth_preferences"), held)

    def facts(self, manifest):
        facts = {"dpo_pairs": manifest.get("dpo_pairs"), "items": manifest.get("items")}
        if manifest.get("dpo_pairs") == "reviewed":
            facts.update(approved_pairs=manifest["outputs"]["preferences"]["rows"], outcome=manifest.get("outcome"))
        return facts


class BaseModelStep(Step):
    """A model initialised from a config with the prepare step's tokenizer; a pre-trained base needs no step."""
    name, needs = "base_model", ("prepare",)

    def section(self, recipe):
        return recipe.base_model.init or {}

    def wiring(self, wiring):
        return {"output_dir": wiring.output(self.name), "tokenizer": f"{wiring.output('prepare')}/tokenizer"}

    def load(self, path):
        from train.init_model import load_init_config
        return load_init_config(path)

    def run(self, config, wiring):
        from train.init_model import run_init_model
        return run_init_model(config, overwrite=True)

    def facts(self, manifest):
        return {"parameters": manifest.get("summary", {}).get("parameters")}


class TrainStep(Step):
    stage: str
    model_from: str

    def section(self, recipe):
        from core.config import deep_merge
        return deep_merge(recipe.train.common, getattr(recipe.train, self.stage))

    def user_key(self, recipe, loc):
        # the stage's section is train.common with train.<stage> on top: name the one that holds the key
        in_common = has_key(recipe.train.common, loc) and not has_key(getattr(recipe.train, self.stage), loc)
        return ".".join(["train.common" if in_common else self.section_key, *map(str, loc)])

    def data(self, wiring: Wiring) -> dict:
        raise NotImplementedError

    def wiring(self, wiring):
        return {"output_dir": wiring.output(self.name), "model": {"path": wiring.output(self.model_from)},
                "data": {"train": self.data(wiring)},
                "run": {"name": f"{wiring.recipe.name}-{self.stage}", "storage_path": wiring.train_storage()}}

    def keyed(self, config, key):
        # Ray Train resumes a run of the same name: the same inputs resume after a crash, new ones start afresh
        return {**config, "run": {**config["run"], "name": f"{config['run']['name']}-{key[:8]}"}}

    def load(self, path):
        from train.config import load_train_config
        return load_train_config(path, self.stage)

    def run(self, config, wiring):
        from train.launch import run_training
        return run_training(config, overwrite=True)

    def facts(self, manifest):
        summary = manifest.get("summary", {})
        return {"steps": summary.get("steps"), "first_loss": summary.get("first_loss"),
                "final_loss": summary.get("last_loss")}


class TrainCptStep(TrainStep):
    name, stage, model_from, needs = "train_cpt", "cpt", "base_model", ("prepare", "base_model")

    def data(self, wiring):
        return wiring.output("prepare")


class TrainSftStep(TrainStep):
    name, stage, model_from, needs = "train_sft", "sft", "train_cpt", ("synth_sft", "train_cpt")

    def data(self, wiring):
        return wiring.output("synth_sft")


class TrainDpoStep(TrainStep):
    name, stage, model_from, needs = "train_dpo", "dpo", "train_sft", ("review", "train_sft")

    def reviewed(self, wiring: Wiring) -> bool:
        return wiring.entries.get("review", {}).get("facts", {}).get("dpo_pairs") == "reviewed"

    def data(self, wiring):
        return wiring.output("review" if self.reviewed(wiring) else "synth_preferences")

    def wiring(self, wiring):
        wired = super().wiring(wiring)
        # reviewed pairs are the approved ones; judge-approved pairs are every triple the judge kept
        wired["dpo"] = {"review_status": ["approved"] if self.reviewed(wiring) else None}
        return wired


class EvalStep(Step):
    name, needs = "eval", ("base_model", "train_cpt", "train_sft", "train_dpo", "factory", "synth_sft",
                           "synth_preferences")

    def wiring(self, wiring):
        checkpoints = [{"name": "base", "path": wiring.output("base_model")}] + [
            {"name": stage, "path": wiring.output(f"train_{stage}")} for stage in ("cpt", "sft", "dpo")]
        training_data = [{"path": wiring.output(step)} for step in ("factory", "synth_sft", "synth_preferences")]
        return {"output_dir": wiring.output(self.name), "checkpoints": checkpoints,
                "decontamination": {"training_data": training_data}}

    def load(self, path):
        from eval.config import load_eval_config
        return load_eval_config(path)

    def run(self, config, wiring):
        from eval.eval_run import run_eval
        return run_eval(config, overwrite=True)


STEPS: list[Step] = [FactoryStep(), PrepareStep(), SynthSftStep(), SynthPreferencesStep(), ReviewStep(),
                     BaseModelStep(), TrainCptStep(), TrainSftStep(), TrainDpoStep(), EvalStep()]
STEP_NAMES = [step.name for step in STEPS]


def steps_to_run(recipe: RecipeConfig) -> list[Step]:
    """Every step, less the base model's when the recipe names a pre-trained one."""
    return [s for s in STEPS if not (s.name == "base_model" and recipe.base_model.path is not None)]


def has_key(section: dict, loc: tuple) -> bool:
    """Whether the nested mapping holds the key path ``loc``."""
    for part in loc:
        if not isinstance(section, dict) or part not in section:
            return False
        section = section[part]
    return True


def resolve_references(value: Any, wiring: Wiring, key: str) -> Any:
    """``@STEP`` strings become that step's output path (its jobs read the current run of it themselves);
    ``@STEP/sub/path`` the path in the run the step has published (``<output>/runs/<id>/sub/path``), or under
    its output while it has published none."""
    if isinstance(value, dict):
        return {k: resolve_references(v, wiring, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_references(v, wiring, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and value.startswith("@"):
        step, _, rest = value[1:].partition("/")
        if step not in STEP_NAMES:
            raise ConfigError(f"{key}: {value!r} names no recipe step (steps: {', '.join(STEP_NAMES)})")
        return str(resolve(f"{wiring.output(step)}/{rest.strip('/')}")) if rest else wiring.output(step)
    return value
