"""What the dedup stages found, typed: exact dedup's count is read by near dedup (to tell near duplicates
from exact copies), near dedup's clusters by the cluster columns, and all of it by the manifest."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class DedupFindings:
    exact_duplicates: int = 0  # documents whose text an earlier document has (ExactDedup)
    near_duplicates: int = 0  # documents MinHash put in another document's cluster, exact copies aside (NearDedup)
    candidate_pairs: int = 0  # pairs sharing an LSH band
    verified_pairs: int = 0  # candidate pairs whose signature similarity reaches the threshold
    cluster_rounds: int | None = None  # rounds of large-star/small-star; None: no duplicate, no clustering
    clusters_written: bool = False  # the cluster tables exist (some duplicate was found)

    def manifest(self) -> dict:
        """The manifest's ``dedup`` entry: the counts, and the cluster rounds when clusters were computed."""
        counts = asdict(self)
        counts.pop("clusters_written")
        if self.cluster_rounds is None:
            counts.pop("cluster_rounds")
        return counts
