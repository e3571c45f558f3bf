"""Command line: ``python -m quality validate KIND PATH``, ``annotators add|list`` and
``review load|serve|export`` (the annotator review app)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli import add_print_config_argument, command_parser, print_config, run_command
from quality.config import KINDS

EPILOG = """examples:
  python -m quality validate documents out/sample
  python -m quality validate sft out/synth_sft --config my_thresholds.yaml --docs-dir /tmp/sft-docs
  python -m quality annotators add alice --admin            # prints alice's login token, once
  python -m quality review load out/synth_preferences --db reviews.sqlite --overlap 2
  python -m quality review serve --db reviews.sqlite --port 8600
  python -m quality review export --db reviews.sqlite --out out/reviewed

exit codes: 0 done (validate: every expectation holds), 1 validate: an expectation fails (export: its
gate fails), 2 bad input (unreadable file, unknown kind, bad config).
Thresholds: quality/presets/defaults.yaml; review app settings: quality/presets/review.yaml.
"""
DB_HELP = "the review database (SQLite; default reviews.sqlite)"


def parser() -> argparse.ArgumentParser:
    top, commands = command_parser(
        "python -m quality", "Validate datasets with Great Expectations suites, and review preference pairs "
        "in a browser.", EPILOG)
    validate = commands.add_parser(
        "validate", help="validate a published dataset (or Parquet files) against its kind's suite",
        description="Measure every row of the dataset (schema, empties, unique ids, duplicates, lengths, PII, "
        "kind-specific invariants), have Great Expectations judge each measurement, write Data Docs (HTML) to "
        "quality/ of the run PATH publishes (PATH/runs/<current run>/quality/; beside plain Parquet: PATH/quality/), "
        "record the result in that run's manifest.json, and print a summary.",
    )
    validate.add_argument("kind", choices=KINDS, help="what the dataset is")
    validate.add_argument("path", help="a published output (its current run is validated), a run's own folder, "
                          "a directory of Parquet files, or one file")
    validate.add_argument("--config", help="YAML with thresholds on top of quality/presets/defaults.yaml")
    validate.add_argument("--docs-dir", help="where the Data Docs go (default quality/ in the run validated)")
    add_print_config_argument(validate)

    annotators = commands.add_parser("annotators", help="add or list the annotators of the review app")
    annotator_commands = annotators.add_subparsers(dest="action", required=True)
    add = annotator_commands.add_parser("add", help="create an annotator and print their login token (once)",
                                        description="Only a salted hash of the token is stored: keep the printout.")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may open the admin page (counts, agreement, disputes)")
    add.add_argument("--db", default="reviews.sqlite", help=DB_HELP)
    listing = annotator_commands.add_parser("list", help="annotators and their decision counts")
    listing.add_argument("--db", default="reviews.sqlite", help=DB_HELP)

    review = commands.add_parser("review", help="the review app: load pairs, serve the pages, export decisions")
    review_commands = review.add_subparsers(dest="action", required=True)
    load = review_commands.add_parser("load", help="load preference triples as review items (again: a no-op)")
    load.add_argument("preferences", help="a synth preferences output, or Parquet in the preference contract")
    load.add_argument("--db", default="reviews.sqlite", help=DB_HELP)
    load.add_argument("--overlap", type=int, help="independent decisions per item (default from review.yaml: 1)")
    load.add_argument("--config", help="YAML on top of quality/presets/review.yaml")
    serve = review_commands.add_parser("serve", help="serve the review pages",
                                       description="Annotators sign in with their name and token; admins see "
                                       "counts, agreement and disputed items at /admin. A decision is on disk before "
                                       "the annotator is told it was saved, and survives a crash of the app and any "
                                       "command run beside it (annotators, review load/export). One app process "
                                       "serves a database, from a local disk: a second app on the same database, or "
                                       "a database on a network filesystem (NFS, SMB, FUSE), is refused (exit 2).")
    serve.add_argument("--db", default="reviews.sqlite", help=DB_HELP)
    serve.add_argument("--host", help="default from review.yaml: 127.0.0.1")
    serve.add_argument("--port", type=int, help="default from review.yaml: 8600")
    serve.add_argument("--export-out", help="where the admin page's Export publishes (default from review.yaml: "
                       "reviewed)")
    serve.add_argument("--config", help="YAML on top of quality/presets/review.yaml")
    export = review_commands.add_parser("export", help="write the reviewed preference dataset",
                                        description="Majority decision per item (swaps and edits applied, pairs "
                                        "rejected by both dropped, ties left out and listed), review_status "
                                        "approved, published atomically after its quality gate.")
    export.add_argument("--db", default="reviews.sqlite", help=DB_HELP)
    export.add_argument("--out", required=True, help="output directory")
    export.add_argument("--overwrite", action="store_true", help="replace what --out holds")
    return top


def validate_command(args: argparse.Namespace) -> int:
    """0 when every expectation holds, 1 when one fails."""
    from core.errors import InputError
    from quality.config import load_quality_config
    from quality.datasets import dataset_root
    from quality.gate import default_docs, validate

    config = load_quality_config(args.config)
    if args.print_config:
        try:
            root = dataset_root(args.path)
        except InputError:  # the config is shown for a path not there yet too
            root = args.path if "://" in args.path else Path(args.path)
        return print_config(f"python -m quality validate {args.kind} {args.path}", config, [
            f"validate {root} as {args.kind}: its contract's schema, then the thresholds above "
            f"(sections {args.kind}: and examples:), checked by Great Expectations",
            f"Data Docs: {args.docs_dir or default_docs(root)}; "
            "exit 1 when an expectation fails"])
    result = validate(args.kind, args.path, config, args.docs_dir)
    print(result.summary())
    record_verdict(result)
    return 0 if result.success else 1


def record_verdict(result) -> None:
    """A validated run's manifest records the verdict, and lists the Data Docs written into the run among its
    files; plain Parquet has no manifest to record it in. On object storage the Data Docs stay local (see
    ``default_docs``) and the manifest is replaced whole, in one PUT: there is no rename to swap it with."""
    import json

    from core.publish import MANIFEST, listed_files, read_finished_manifest, write_json_atomically
    from core.storage import is_uri, locate, write_bytes
    from quality.datasets import is_dir

    run = result.path
    manifest = read_finished_manifest(run) if is_dir(run) else None
    if manifest is None:
        return
    manifest["quality"] = result.manifest_entry()
    if is_uri(run):
        where = locate(f"{str(run).rstrip('/')}/{MANIFEST}", "PATH")
        write_bytes(where, (json.dumps(manifest, indent=2, default=str) + "\n").encode("utf-8"))
        return
    if "files" in manifest and result.docs.parent.is_relative_to(run):
        docs = result.docs.parent.relative_to(run).as_posix()
        kept = [f for f in manifest["files"] if not f["path"].startswith(f"{docs}/")]  # an earlier validation's
        manifest["files"] = kept + [{**f, "path": f"{docs}/{f['path']}"} for f in listed_files(result.docs.parent)]
    write_json_atomically(run / MANIFEST, manifest)


def open_store(db: str, must_exist: bool = True):
    from core.errors import InputError
    from quality.review.sqlite_store import SqliteReviewStore

    if must_exist and not Path(db).is_file():
        raise InputError(f"--db: {db} does not exist; create annotators and load items first")
    return SqliteReviewStore(db)


def annotators_command(args: argparse.Namespace) -> None:
    from core.errors import InputError
    from quality.review.auth import hash_token, new_token

    store = open_store(args.db, must_exist=args.action == "list")
    if args.action == "add":
        token = new_token()
        try:
            store.add_annotator(args.name, hash_token(token), args.admin)
        except ValueError as exc:
            raise InputError(f"annotators add: {exc}") from None
        print(f"annotator {args.name}{' (admin)' if args.admin else ''} added to {args.db}")
        print(f"login token (shown once, only its hash is stored): {token}")
        return
    for entry in store.annotator_counts():
        counts = ", ".join(f"{k} {v}" for k, v in sorted(entry["decisions"].items())) or "no decisions"
        print(f"{entry['name']}{' (admin)' if entry['admin'] else ''}: {entry['votes']} votes ({counts})")


def review_command(args: argparse.Namespace) -> None:
    from quality.review.config import load_review_config

    if args.action == "export":
        from quality.review.export import ExportConfig, export

        export(open_store(args.db), ExportConfig(db=args.db, output_dir=args.out), overwrite=args.overwrite)
        return
    config = load_review_config(args.config)
    if args.action == "load":
        from quality.review.loading import load

        load(open_store(args.db, must_exist=False), args.preferences, args.overlap or config.overlap)
        return
    import uvicorn

    from quality.review.app import create_app
    from quality.review.export import ExportConfig

    from quality.review.serving import claim_serving

    host, port = args.host or config.host, args.port if args.port is not None else config.port
    export_to = ExportConfig(db=args.db, output_dir=str(Path(args.export_out or config.export_dir).resolve()))
    store = open_store(args.db)
    claim = claim_serving(args.db, f"http://{host}:{port}/")  # held until this process ends
    print(f"review app on http://{host}:{port}/ (database {args.db}; the admin page exports to "
          f"{export_to.output_dir}); Ctrl+C stops it", flush=True)
    uvicorn.run(create_app(store, config, export_to), host=host, port=port, log_level="warning")
    claim.close()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    commands = {"validate": validate_command, "annotators": annotators_command, "review": review_command}
    return run_command(lambda: commands[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
