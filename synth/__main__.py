"""Command line: ``python -m synth sft CONFIG.yaml`` and ``python -m synth preferences CONFIG.yaml``."""
from __future__ import annotations

import argparse
import sys

from core.cli import add_job_arguments, command_parser, output_override, print_config, run_command

EPILOG = """examples:
  python -m synth sft configs/synth_sft.yaml
  python -m synth preferences configs/synth_preferences.yaml
  ray job submit --working-dir . -- python -m synth sft configs/synth_sft.yaml --output-dir /shared/out/sft

Every answer is stored in an SQLite cache (cache_path) as it arrives: rerunning after a crash,
or with more documents, sends only the requests without a stored answer.
"""


def parser() -> argparse.ArgumentParser:
    top, commands = command_parser(
        "python -m synth", "Generate SFT examples and preference triples from the factory's documents with any "
        "OpenAI-compatible endpoint (vLLM, Ollama, OpenAI).", EPILOG)
    sft = commands.add_parser(
        "sft", help="instruction/response pairs grounded in documents",
        description="For every document and configured task type (question answering, summary, term explanation, "
        "research significance, free-form; single- or multi-turn) ask the generator for a conversation grounded "
        "in the document, then add robustness variants (paraphrased, mixed-language, typos). Writes sft/, rejects/ "
        "and manifest.json to output_dir/runs/<run id>, published atomically by output_dir/CURRENT.",
    )
    prefs = commands.add_parser(
        "preferences", help="(prompt, chosen, rejected) triples judged by an LLM",
        description="For every prompt of an SFT output, sample one answer per configured generator (endpoint and "
        "temperature), judge pairs with an LLM in both orders, and keep pairs whose verdict survives the swap. "
        "Ties and inconsistent verdicts go to rejects/ with their reason. Writes preferences/, rejects/, "
        "manifest.json to output_dir/runs/<run id>, published by output_dir/CURRENT.",
    )
    for command in (sft, prefs):
        add_job_arguments(command, "YAML config (see configs/synth_sft.yaml, configs/synth_preferences.yaml)")
    return top


def dispatch(args: argparse.Namespace) -> int | None:
    from synth.config import load_synth_config
    from synth.synth_run import run_synth

    config = load_synth_config(args.config, args.command, output_override(args))
    if args.print_config:
        from synth.describe import synth_plan

        return print_config(f"python -m synth {args.command} {args.config}", config, synth_plan(args.command, config))
    run_synth(args.command, config, overwrite=args.overwrite)
    return None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run_command(lambda: dispatch(args))


if __name__ == "__main__":
    sys.exit(main())
