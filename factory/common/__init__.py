"""Code shared by every package: config loading, Parquet IO, run manifest, atomic publishing."""
