"""Factory, part two: turn a finished factory run into a packed continual-pre-training dataset.

score (map_batches) -> tokenise (map_batches) -> mix domain/general by tokens -> curriculum buckets
-> in-context grouping (groupby().map_groups) -> global sort -> pack into seq_len rows -> report.
"""
