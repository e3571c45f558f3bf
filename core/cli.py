"""What every job's command line shares: the CONFIG / --output-dir / --overwrite arguments, -v/-q on every
subcommand, and one map from expected errors to exit codes (core.errors.EXIT_CODES)."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from core import progress
from core.errors import exit_code


class _SubcommandParser(argparse.ArgumentParser):
    """Every subcommand of every job takes -v/-q."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        output = self.add_mutually_exclusive_group()
        output.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=progress.VERBOSE,
                            default=progress.NORMAL, help="also print Ray's own logs and progress bars")
        output.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=progress.QUIET,
                            help="print only the summary (no progress lines)")


class _JobParser(argparse.ArgumentParser):
    """A job's top-level parser: parsing the command line also sets the process's verbosity (core.progress)."""

    def parse_known_args(self, args=None, namespace=None):
        parsed, rest = super().parse_known_args(args, namespace)
        progress.set_verbosity(getattr(parsed, "verbosity", progress.NORMAL))
        return parsed, rest


def command_parser(prog: str, description: str, epilog: str) -> tuple[argparse.ArgumentParser, object]:
    """A job's top-level parser, with its examples and exit codes as the epilog, and its subcommands."""
    top = _JobParser(prog=prog, description=description, epilog=epilog,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    return top, top.add_subparsers(dest="command", required=True, parser_class=_SubcommandParser)


def add_job_arguments(command: argparse.ArgumentParser, config_help: str) -> None:
    """CONFIG, --output-dir and --overwrite, as in ``python -m factory run CONFIG --output-dir DIR``."""
    command.add_argument("config", help=config_help)
    command.add_argument("--output-dir", help="override output_dir from the config")
    command.add_argument("--overwrite", action="store_true",
                         help="replace what output_dir holds (by default a finished run of the same config "
                              "is kept and anything else is refused)")


def output_override(args: argparse.Namespace) -> dict | None:
    """The config overrides the common arguments ask for."""
    return {"output_dir": args.output_dir} if getattr(args, "output_dir", None) else None


def run_command(action: Callable[[], int | None]) -> int:
    """Run ``action`` (its exit code, or None for 0); an expected error is printed as ``error: ...``
    with its exit code, a bug raises."""
    try:
        return action() or 0
    except Exception as exc:
        code = exit_code(exc)
        if code is None:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return code
