"""Deduplication, all of it: per-document keys (``keys``), the MinHash algorithm (``minhash``), tables
hash-partitioned on disk (``partitions``, ``tables``), exact duplicates (``exact``), near-duplicate pairs
(``near``), duplicate clusters as connected components (``components``), and the decisions joined back
to the documents (``decisions``). ``stages`` holds the pipeline steps that use them."""
