"""What every job shares and nothing else: config loading, errors and exit codes, Ray start-up,
the published-run helper (run id, manifest, partial directory, atomic publish), Parquet writing,
the command line's common arguments, and the data contracts' schemas.

factory, synth, train (and quality, eval) import this package; none of them imports another
job's internals for plumbing.
"""
