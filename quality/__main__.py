"""Command line: ``python -m quality validate KIND PATH [--config FILE] [--docs-dir DIR]``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli import command_parser, run_command
from quality.config import KINDS

EPILOG = """examples:
  python -m quality validate documents out/sample
  python -m quality validate cpt out/sample_cpt
  python -m quality validate sft out/synth_sft --config my_thresholds.yaml --docs-dir /tmp/sft-docs

exit codes: 0 every expectation holds, 1 at least one fails, 2 bad input (unreadable file, unknown kind).
Thresholds: quality/presets/defaults.yaml, one section per kind; --config overrides any key.
"""


def parser() -> argparse.ArgumentParser:
    top, commands = command_parser(
        "python -m quality", "Validate datasets with Great Expectations suites before anything uses them.", EPILOG)
    validate = commands.add_parser(
        "validate", help="validate a published dataset (or Parquet files) against its kind's suite",
        description="Measure every row of the dataset (schema, empties, unique ids, duplicates, lengths, PII, "
        "kind-specific invariants), have Great Expectations judge each measurement, write Data Docs (HTML) to "
        "PATH/quality/, record the result in PATH/manifest.json when PATH is a published run, and print a summary.",
    )
    validate.add_argument("kind", choices=KINDS, help="what the dataset is")
    validate.add_argument("path", help="a published run directory, a directory of Parquet files, or one file")
    validate.add_argument("--config", help="YAML with thresholds on top of quality/presets/defaults.yaml")
    validate.add_argument("--docs-dir", help="where the Data Docs go (default PATH/quality/)")
    return top



def validate_command(args: argparse.Namespace) -> bool:
    from core.publish import MANIFEST, read_finished_manifest, write_json_atomically
    from quality.config import load_quality_config
    from quality.gate import validate

    result = validate(args.kind, args.path, load_quality_config(args.config), args.docs_dir)
    print(result.summary())
    root = Path(args.path)
    manifest = read_finished_manifest(root) if root.is_dir() else None
    if manifest is not None:  # a published run: its manifest records the verdict
        manifest["quality"] = result.manifest_entry()
        write_json_atomically(root / MANIFEST, manifest)
    return result.success


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    outcome: list[bool] = []
    code = run_command(lambda: outcome.append(validate_command(args)))
    return code if code else (0 if outcome[0] else 1)


if __name__ == "__main__":
    sys.exit(main())
