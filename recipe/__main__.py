"""python -m recipe run CONFIG: raw corpus -> datasets -> CPT/SFT/DPO -> eval, each step its job's public run."""
from __future__ import annotations

import sys

from core.cli import add_override_arguments, add_print_config_argument, command_parser, parse_overrides, print_config, run_command
from recipe.steps import STEP_NAMES

EPILOG = """examples:
  python -m recipe run configs/recipe-tiny.yaml                    # raw corpus -> datasets -> CPT/SFT/DPO -> eval
  python -m recipe run configs/recipe-tiny.yaml --from train_sft   # start at a step (earlier ones kept)
  python -m recipe run configs/recipe-tiny.yaml --only eval        # one step alone
  ray job submit --working-dir . -- python -m recipe run configs/recipe-cluster.yaml

exit codes: 0 done (or every step already current), 1 a step's output did not add up or failed its quality gate
(earlier steps are kept), 2 bad config or input (every step's config is checked before the first step runs).
"""


def main(argv: list[str] | None = None) -> int:
    top, commands = command_parser("python -m recipe", "Run every job of the chain in order, each step's outputs "
                                   "being the next step's inputs.", EPILOG)
    run = commands.add_parser(
        "run",
        help="run every step from raw corpus to evaluated model (factory, prepare, synth, review, train, eval)",
        description="Steps, in order: " + ", ".join(STEP_NAMES) + ". Each step's config is the recipe's section "
        "for it plus the outputs of the steps before it (written to <storage_path>/configs/STEP.yaml, which the "
        "job's own CLI also takes). A step whose output is published from the same config and inputs is skipped; "
        "<storage_path>/recipe_manifest.json links every artifact to its config, code version and inputs, and "
        "summary.md is the one-page result. Starts Ray locally, or joins RAY_ADDRESS (as under ray job submit).",
    )
    run.add_argument("config", help="recipe YAML (see configs/recipe-tiny.yaml, configs/recipe-cluster.yaml)")
    add_override_arguments(run)  # train.cpt.optim.learning_rate=1e-4
    add_print_config_argument(run)
    run.add_argument("--storage-path", help="override storage_path (every node must see it on a cluster)")
    which = run.add_mutually_exclusive_group()
    which.add_argument("--from", dest="start_at", metavar="STEP", help="start at STEP (earlier steps must be published)")
    which.add_argument("--only", metavar="STEP", help="run STEP alone (earlier steps must be published)")
    run.add_argument("--force", action="store_true", help="rerun the selected steps even when current")
    args = top.parse_args(argv)

    def action() -> int | None:
        from recipe.config import load_recipe_config
        from recipe.runner import run_recipe

        overrides = parse_overrides(args.overrides)
        if args.storage_path:
            overrides["storage_path"] = args.storage_path
        recipe = load_recipe_config(args.config, overrides or None)
        if args.print_config:
            from recipe.describe import recipe_plan

            return print_config(f"python -m recipe run {args.config}", recipe, recipe_plan(recipe))
        run_recipe(recipe, start_at=args.start_at, only=args.only, force=args.force)
        return None

    return run_command(action)


if __name__ == "__main__":
    sys.exit(main())
