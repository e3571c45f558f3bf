"""Command line: ``python -m factory run|calibrate|prepare CONFIG.yaml``."""
from __future__ import annotations

import argparse
import sys

from core.cli import add_job_arguments, command_parser, output_override, print_config, run_command

EPILOG = """examples:
  python -m factory run configs/sample.yaml
  ray job submit --working-dir . -- python -m factory run configs/sample.yaml --output-dir /shared/out/sample
  python -m factory prepare configs/sample_prepare.yaml
  python -m factory calibrate configs/sample.yaml --clean factory/sample_data/arxiv_cs.parquet --junk factory/sample_data/junk.parquet

exit codes: 0 done (or already done), 1 the output did not add up and was not published,
2 bad config or input, or an output that must not be replaced.

The end-to-end chain (factory -> prepare -> synth -> review -> train -> eval) is `python -m recipe run CONFIG`.
"""


def parser() -> argparse.ArgumentParser:
    top, commands = command_parser(
        "python -m factory",
        "Clean, redact and deduplicate Parquet/JSONL corpora on Ray Data, accounting for every document.", EPILOG)
    run = commands.add_parser(
        "run",
        help="run the factory pipeline described by a YAML config",
        description="Read the configured sources, normalise, redact PII, filter, deduplicate (exact and MinHash), "
        "and write documents/, rejects/ and manifest.json into output_dir, published atomically. "
        "Starts Ray locally, or joins RAY_ADDRESS / ray.address when set (as under ray job submit).",
    )
    add_job_arguments(run, "YAML config (see configs/sample.yaml)")
    calibrate = commands.add_parser(
        "calibrate",
        help="report how much clean and junk text each quality filter rule drops",
        description="Run the config's quality filters (after its normalisation) over a reference set of "
        "known-clean domain documents and a junk set, and report per filter and per rule the share of "
        "clean documents dropped and of junk caught, so thresholds are chosen from data.",
    )
    calibrate.add_argument("config", help="YAML config whose filters and normalisation are calibrated")
    calibrate.add_argument("--clean", required=True, help="Parquet/JSONL of known-clean domain documents")
    calibrate.add_argument("--junk", required=True, help="Parquet/JSONL of boilerplate/gibberish documents")
    calibrate.add_argument("--text-column", default="text", help="text column in both sets (default: text)")
    calibrate.add_argument("--limit", type=int, help="use at most this many documents of each set")
    calibrate.add_argument("--json", help="also write the report as JSON to this path")
    prepare = commands.add_parser(
        "prepare",
        help="turn a finished factory run into a packed CPT dataset",
        description="Score documents, mix domain/general text to a token ratio, order them in curriculum buckets, "
        "group related documents (in-context pretraining), tokenise and pack them into seq_len rows, and write "
        "train/ and validation/ Parquet, documents/, mixed_out/, report.md and manifest.json into output_dir, "
        "published atomically.",
    )
    add_job_arguments(prepare, "YAML prepare config (see configs/sample_prepare.yaml)")
    return top


def dispatch(args: argparse.Namespace) -> int | None:
    if args.command == "prepare":
        from factory.prepare.config import load_prepare_config
        from factory.prepare.prepare_run import run_prepare

        prepare = load_prepare_config(args.config, output_override(args))
        if args.print_config:
            from factory.describe import prepare_plan

            return print_config(f"python -m factory prepare {args.config}", prepare, prepare_plan(prepare))
        run_prepare(prepare, overwrite=args.overwrite)
        return None
    from factory.config import load_factory_config

    config = load_factory_config(args.config, output_override(args))
    if getattr(args, "print_config", False):
        from factory.describe import factory_plan

        return print_config(f"python -m factory run {args.config}", config, factory_plan(config))
    if args.command == "run":
        from factory.factory_run import run_factory

        run_factory(config, overwrite=args.overwrite)
    else:
        from factory.calibrate import calibrate_command

        calibrate_command(config, args)
    return None


MOVED = {"recipe": "`python -m factory recipe` is now `python -m recipe run` (same arguments): the recipe drives every "
                     "job, so it lives beside them, not inside the factory"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in MOVED:
        print(f"error: {MOVED[argv[0]]}", file=sys.stderr)
        return 2
    args = parser().parse_args(argv)
    return run_command(lambda: dispatch(args))


if __name__ == "__main__":
    sys.exit(main())
