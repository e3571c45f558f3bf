"""``python -m recipe run CONFIG``, top to bottom: for each step, build its job's config from the user's
section and the outputs of the steps before it, write it to ``<storage>/configs/<step>.yaml`` (the same file
the job's own CLI takes), skip the step when its output is current, else run the job's public run function,
then record its lineage. One Ray for all steps: the cluster the recipe was submitted to, or a local one.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import yaml

from core import progress
from core.config import deep_merge, outputs_pending
from core.errors import ConfigError
from core.publish import write_text_atomically, write_text_whole
from core.ray_runtime import init_ray, ray_keys_named
from recipe.config import RecipeConfig
from recipe.lineage import RecipeManifest, step_key
from recipe.steps import Step, Wiring, check_endpoints, resolve_references, steps_to_run
from recipe.summary import summary_page


def wired_keys_set_by_user(user: dict, wired: dict, prefix: str) -> list[str]:
    """Keys of the user's section that the recipe wires (output_dir, input paths, model paths, run names)."""
    clashes = []
    for key, value in wired.items():
        if key not in user:
            continue
        if isinstance(value, dict) and isinstance(user[key], dict):
            clashes += wired_keys_set_by_user(user[key], value, f"{prefix}.{key}")
        else:
            clashes.append(f"{prefix}.{key}")
    return clashes


def selected_steps(steps: list[Step], start_at: str | None, only: str | None) -> list[Step]:
    names = [s.name for s in steps]
    for flag, name in (("--from", start_at), ("--only", only)):
        if name is not None and name not in names:
            raise ConfigError(f"{flag} {name}: not a step of this recipe (steps: {', '.join(names)})")
    if only is not None:
        return [s for s in steps if s.name == only]
    if start_at is not None:
        return steps[names.index(start_at):]
    return steps


def write_step_config(path: Path, config: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, yaml.safe_dump(config, sort_keys=False))
    return path


def publish_step_config(recipe: RecipeConfig, step: str, config: dict) -> tuple[Path, str]:
    """The step's config at ``<storage>/configs/<step>.yaml``, where the user finds it, and the local file the
    job loads: the same file for a local storage, a copy in the local state folder for object storage."""
    named = recipe.at("configs", f"{step}.yaml")
    local = write_step_config(recipe.state / "configs" / f"{step}.yaml" if recipe.remote else Path(named), config)
    if recipe.remote:
        write_text_whole(named, local.read_text(encoding="utf-8"), "storage_path")
    return local, named


def run_recipe(recipe: RecipeConfig, *, start_at: str | None = None, only: str | None = None,
               force: bool = False) -> dict:
    """Runs (or skips) each step; returns the recipe manifest. ``start_at``/``only`` limit the steps looked at
    (the ones before must be published); ``force`` reruns the selected steps even when current."""
    manifest = RecipeManifest(recipe)
    steps = steps_to_run(recipe)
    selected = {s.name for s in selected_steps(steps, start_at, only)}
    statuses: dict[str, str] = {}
    check_every_step(steps, recipe, manifest)  # a typo in any step's config fails now, not after hours of work
    first_selected = min(i for i, s in enumerate(steps) if s.name in selected)
    for number, step in enumerate(steps[:first_selected], 1):  # the steps after a selected one are not its inputs
        if manifest.entries.get(step.name) is None:
            raise ConfigError(f"[{number}/{len(steps)}] {step.name}: has no published output yet, and "
                              f"--from/--only skip it; run the recipe without them first")
    endpoints = EndpointsCheck(recipe)
    if any(s.uses_endpoints and s.name in selected and s.name not in manifest.entries for s in steps):
        endpoints.ensure()  # a first run fails now, not after the factory and prepare steps
    progress.say(f"recipe {recipe.name}: {len(steps)} steps into {recipe.storage} "
                 f"({', '.join(s.name for s in steps)}); lineage in {manifest.path}")
    init_ray(recipe.ray)  # every job below finds this Ray initialised and uses it
    for number, step in enumerate(steps, 1):
        where = f"[{number}/{len(steps)}] {step.name}"
        if step.name in selected:
            # the job's init_ray warns about its ray: keys this Ray cannot honour, named as the recipe spells them
            with ray_keys_named(lambda key, step=step: step.user_key(recipe, ("ray", key))):
                statuses[step.name] = run_or_skip_step(step, recipe, manifest, force, where, endpoints)
    page = summary_page(recipe.name, recipe.storage, manifest.entries, statuses, manifest.path)
    write_text_whole(recipe.at("summary.md"), page, "storage_path")
    progress.summary(page)
    return manifest.data


def check_every_step(steps: list[Step], recipe: RecipeConfig, manifest: RecipeManifest) -> None:
    """Every step's config, wired and validated by its job's own loader, before the first step runs; every
    problem of every step in one error naming the recipe's keys (``train.cpt.optim.learning_rat``). Outputs of
    steps not run yet count as present (``outputs_pending``); each job checks its real inputs when it starts."""
    wiring = Wiring(recipe, manifest.entries)
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as scratch, outputs_pending(recipe.storage, wiring.train_storage()):
        for step in steps:
            try:
                step.load(write_step_config(Path(scratch) / f"{step.name}.yaml", step_config(step, recipe, wiring)))
            except ConfigError as exc:
                if exc.problems:
                    problems += [f"{step.user_key(recipe, loc)}: {message}" for loc, message in exc.problems]
                else:  # a job's own check: its message names the scratch file, which the user never saw
                    problems.append(str(exc).replace(str(Path(scratch) / f"{step.name}.yaml"), step.section_key))
    if problems := list(dict.fromkeys(problems)):  # train.common's problem is every training stage's: say it once
        raise ConfigError(f"{recipe.source}: {len(problems)} problem(s) found before any step ran:\n"
                          + "\n".join(f"  {problem}" for problem in problems))


def step_config(step: Step, recipe: RecipeConfig, wiring: Wiring) -> dict:
    """The user's section for the step, references resolved, with the recipe's wiring on top."""
    section = step.section_key
    user = resolve_references(step.section(recipe), wiring, section)
    wired = step.wiring(wiring)
    if clashes := wired_keys_set_by_user(user, wired, section):
        raise ConfigError(f"recipe: {', '.join(clashes)}: set by the recipe from storage_path and the earlier steps' "
                          "outputs; remove from the recipe config")
    return deep_merge(user, wired)


class EndpointsCheck:
    """Every synth endpoint answers, checked once per recipe run: before the first step when a step that calls
    them has never run, else before the first such step that runs (a rerun where synth is current needs no server)."""

    def __init__(self, recipe: RecipeConfig):
        self.recipe, self.done = recipe, False

    def ensure(self) -> None:
        if not self.done:
            check_endpoints(self.recipe)
            self.done = True


def run_or_skip_step(step: Step, recipe: RecipeConfig, manifest: RecipeManifest, force: bool, where: str,
                     endpoints: EndpointsCheck) -> str:
    """'ran' or 'skipped'."""
    wiring = Wiring(recipe, manifest.entries)
    merged = step_config(step, recipe, wiring)
    upstream = {need: manifest.identity(need) for need in step.needs}
    key = step_key(merged, upstream, step.state(wiring))
    local_config, config_file = publish_step_config(recipe, step.name, step.keyed(merged, key))
    config = step.load(local_config)  # the job's own loader: its presets, validation and input checks
    if not force and manifest.is_current(step.name, key):
        entry = manifest.entries[step.name]
        progress.say(f"{where}: skipped, {entry['output']} holds run {entry.get('run_id') or '-'} of the same config "
                     "and inputs")
        return "skipped"
    if step.uses_endpoints:
        endpoints.ensure()
    progress.say(f"{where}: running (config {config_file})")
    started = time.perf_counter()
    try:
        job_manifest = step.run(config, wiring)
    except BaseException:
        # where to pick up again: said with -q too, before the error itself
        progress.warn(f"{where}: FAILED after {time.perf_counter() - started:.0f} s. Earlier steps are kept; fix the "
                      f"cause and rerun from here: python -m recipe run CONFIG --from {step.name}")
        raise
    wall = time.perf_counter() - started
    manifest.record(step.name, key=key, config_file=config_file, output=wiring.output(step.name), upstream=upstream,
                    manifest=job_manifest, facts=step.facts(job_manifest), wall_s=wall)
    progress.say(f"{where}: done in {wall:.1f} s")
    return "ran"
