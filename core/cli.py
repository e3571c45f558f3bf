"""What every job's command line shares: the CONFIG / --output-dir / --overwrite arguments, -v/-q on every
subcommand, and one map from expected errors to exit codes (core.errors.EXIT_CODES)."""
from __future__ import annotations

import argparse
import re
import sys
from typing import Callable

import yaml

from core import infeasible_watch, progress
from core.config import deep_merge
from core.errors import ConfigError, UnplaceableError, exit_code


class _SubcommandParser(argparse.ArgumentParser):
    """Every subcommand of every job takes -v/-q."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        output = self.add_mutually_exclusive_group()
        output.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=progress.VERBOSE,
                            default=progress.NORMAL, help="also print Ray's own logs and progress bars")
        output.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=progress.QUIET,
                            help="print only the summary (no progress lines)")

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):
        # options may sit between CONFIG and its KEY=VALUE overrides (cfg.yaml --print-config a.b=1); the
        # intermixed parse calls this method again for each of its two passes
        if self._intermixing or any(isinstance(a, argparse._SubParsersAction) for a in self._actions):
            # argparse cannot intermix a parser that has subcommands of its own (quality review load ...)
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


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
    """CONFIG [KEY=VALUE ...], --output-dir and --overwrite, as in ``python -m train sft cfg.yaml
    optim.learning_rate=1e-5 --output-dir DIR``."""
    command.add_argument("config", help=config_help)
    add_override_arguments(command)
    add_print_config_argument(command)
    command.add_argument("--output-dir", help="override output_dir from the config")
    command.add_argument("--overwrite", action="store_true",
                         help="replace what output_dir holds (by default a finished run of the same config "
                              "is kept and anything else is refused)")


def add_print_config_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument("--print-config", action="store_true",
                         help="print the fully resolved config, each value with its source (preset, file, command "
                              "line or default), and the plan (stages, filters, steps), then exit without running")


def print_config(title: str, config, plan: list[str]) -> int:
    """``--print-config``'s output (core.describe) for a config just loaded; 0, the exit code."""
    from core.describe import describe_config

    print(describe_config(config, title, plan))
    return 0


def add_override_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                         help="override a config key, dotted (optim.learning_rate=1e-5, filters.c4.enabled=false); "
                              "the value is read as YAML, validated like the file, and the run's manifest holds "
                              "the config it gives")


# what YAML 1.1 (PyYAML) reads as text although a user means a number: 1e-5, 3E4 (it wants 1.0e-5)
_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def parse_overrides(pairs: list[str]) -> dict:
    """``["optim.learning_rate=1e-5"]`` -> ``{"optim": {"learning_rate": 1e-05}}``. A value is YAML (numbers,
    booleans, null, [lists]); ``1e-5``, which YAML 1.1 reads as text, is taken as the number it means."""
    merged: dict = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        parts = key.split(".")
        if not sep or not all(part.strip() for part in parts):
            raise ConfigError(f"{pair!r}: an override is KEY=VALUE with a dotted key, e.g. optim.learning_rate=1e-5")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"{key}: the value {raw!r} is not valid YAML: {exc}") from None
        if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
            value = float(value)
        for part in reversed(parts):
            value = {part: value}
        merged = deep_merge(merged, value)
    return merged


def output_override(args: argparse.Namespace) -> dict | None:
    """The config overrides the command line asks for: KEY=VALUE pairs, then --output-dir."""
    overrides = parse_overrides(getattr(args, "overrides", None) or [])
    if getattr(args, "output_dir", None):
        overrides["output_dir"] = args.output_dir
    return overrides or None


def run_command(action: Callable[[], int | None]) -> int:
    """Run ``action`` (its exit code, or None for 0); an expected error is printed as ``error: ...``
    with its exit code, a bug raises."""
    try:
        return action() or 0
    except KeyboardInterrupt:
        unplaceable = infeasible_watch.fired()  # the watch interrupts the main thread to stop a job that cannot run
        if unplaceable is None:
            raise
        print(f"error: {unplaceable}", file=sys.stderr)
        return exit_code(UnplaceableError(unplaceable))
    except Exception as exc:
        code = exit_code(exc)
        if code is None:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return code
