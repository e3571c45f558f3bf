"""Command line: ``python -m synth sft CONFIG.yaml`` and ``python -m synth preferences CONFIG.yaml``."""
from __future__ import annotations

import argparse
import sys

from factory.common.cli import add_job_arguments
from factory.common.config_loading import ConfigError
from factory.common.publish import OutputExistsError
from factory.common.errors import InputError

EPILOG = """examples:
  python -m synth sft configs/synth_sft.yaml
  python -m synth preferences configs/synth_preferences.yaml
  ray job submit --working-dir . -- python -m synth sft configs/synth_sft.yaml --output-dir /shared/out/sft

Every answer is stored in an SQLite cache (cache_path) as it arrives: rerunning after a crash,
or with more documents, sends only the requests without a stored answer.
"""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m synth",
        description="Generate SFT examples and preference triples from the factory's documents with any "
        "OpenAI-compatible endpoint (vLLM, Ollama, OpenAI).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True)
    sft = commands.add_parser(
        "sft", help="instruction/response pairs grounded in documents",
        description="For every document and configured task type (question answering, summary, term explanation, "
        "research significance, free-form; single- or multi-turn) ask the generator for a conversation grounded "
        "in the document, then add robustness variants (paraphrased, mixed-language, typos). Writes sft/, rejects/ "
        "and manifest.json to output_dir, published atomically.",
    )
    prefs = commands.add_parser(
        "preferences", help="(prompt, chosen, rejected) triples judged by an LLM",
        description="For every prompt of an SFT output, sample one answer per configured generator (endpoint and "
        "temperature), judge pairs with an LLM in both orders, and keep pairs whose verdict survives the swap. "
        "Ties and inconsistent verdicts go to rejects/ with their reason. Writes preferences/, rejects/, manifest.json.",
    )
    for command in (sft, prefs):
        add_job_arguments(command, "YAML config (see configs/synth_sft.yaml, configs/synth_preferences.yaml)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from synth.config import load_synth_config
    from synth.job import run_job

    try:
        overrides = {"output_dir": args.output_dir} if args.output_dir else None
        config = load_synth_config(args.config, args.command, overrides)
        run_job(args.command, config, overwrite=args.overwrite)
    except (ConfigError, InputError, OutputExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
