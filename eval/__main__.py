"""python -m eval: compare checkpoints (base, CPT, SFT, DPO) on the same suites, one report."""
from __future__ import annotations

import sys

from core.cli import add_job_arguments, command_parser, output_override, print_config, run_command

EPILOG = """examples:
  python -m eval run configs/eval.yaml
  python -m eval run configs/eval.yaml --output-dir out/eval --overwrite
  ray job submit --working-dir . -- python -m eval run configs/eval.yaml --output-dir /shared/out/eval

The report (report.md, report.html, results.json, plots/) and per-item results (items/) are published
atomically into output_dir with manifest.json naming every checkpoint's path and sha256.

exit codes: 0 done (or nothing to do), 2 bad config or input, 1 unexpected failure"""


def main(argv: list[str] | None = None) -> int:
    top, commands = command_parser("python -m eval", __doc__, EPILOG)
    run = commands.add_parser("run", help="evaluate the config's checkpoints and publish the report")
    add_job_arguments(run, "eval config YAML (checkpoints, eval sets; eval/presets/defaults.yaml has the rest)")
    args = top.parse_args(argv)

    def action() -> int | None:
        from eval.config import load_eval_config
        from eval.eval_run import run_eval

        config = load_eval_config(args.config, output_override(args))
        if args.print_config:
            from eval.describe import eval_plan

            return print_config(f"python -m eval run {args.config}", config, eval_plan(config))
        run_eval(config, overwrite=args.overwrite)
        return None

    return run_command(action)


if __name__ == "__main__":
    sys.exit(main())
