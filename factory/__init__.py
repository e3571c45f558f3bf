"""The dataset factory: clean, redact and deduplicate Parquet/JSONL corpora on Ray Data."""
