"""What a recipe run will do, in words, for ``--print-config``: its steps in order, each with what it reads and
where it publishes (no step's config is loaded, no endpoint called)."""
from __future__ import annotations

from recipe.config import RecipeConfig
from recipe.steps import Wiring, steps_to_run


def recipe_plan(recipe: RecipeConfig) -> list[str]:
    wiring = Wiring(recipe, {})
    lines = [f"storage: {recipe.storage} (every step publishes under it; "
             f"{recipe.at('recipe_manifest.json')} and summary.md link them)",
             f"local state: {recipe.state} (the review database and the synth cache: SQLite needs a local disk)"]
    for number, step in enumerate(steps_to_run(recipe), start=1):
        reads = f" <- {', '.join(step.needs)}" if step.needs else ""
        lines.append(f"{number}. {step.name}{reads} -> {wiring.output(step.name)}")
    if recipe.base_model.path is not None:
        lines.append(f"base model: {recipe.base_model.path} (pre-trained: no base_model step)")
    return lines
