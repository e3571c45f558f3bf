"""Deduplication, all of it: per-document keys (``keys``), the MinHash algorithm (``minhash``), finding
duplicate groups with Ray Data shuffles (``finding``), and turning them into rejects and cluster
columns (``decisions``). ``stages`` holds the pipeline steps that use them."""
