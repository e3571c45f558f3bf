"""Arguments every job's command line takes the same way."""
from __future__ import annotations

import argparse


def add_job_arguments(command: argparse.ArgumentParser, config_help: str) -> None:
    """CONFIG, --output-dir and --overwrite, as in ``python -m factory run CONFIG --output-dir DIR``."""
    command.add_argument("config", help=config_help)
    command.add_argument("--output-dir", help="override output_dir from the config")
    command.add_argument("--overwrite", action="store_true", help="replace an existing output_dir")
