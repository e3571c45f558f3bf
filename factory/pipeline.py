"""The factory pipeline: its stages, in the order they run. The funnel and the accounting read their
order from here. A stage is a class with a ``name`` and ``from_config`` (see ``factory.stages.base``);
adding one is adding it to this list."""
from __future__ import annotations

from factory.config import FactoryConfig
from factory.dedup.keys import DedupKeys
from factory.dedup.stages import DupClusters, ExactDedup, NearDedup
from factory.sources import ReadSources
from factory.stages.base import Stage
from factory.stages.heuristic_filters import HeuristicFilters
from factory.stages.normalise import Normalise
from factory.stages.redact import Redact
from factory.stages.validate import Validate

PIPELINE: tuple[type[Stage], ...] = (
    ReadSources,       # sources -> contract rows; unreadable rows rejected
    Validate,          # null, empty, too long
    Normalise,         # ftfy, hard wraps
    Redact,            # emails, IPs, phones
    DedupKeys,         # text hash and MinHash signature, in the same streaming pass
    ExactDedup,        # identical texts, before the costly filters
    HeuristicFilters,  # datatrove's quality filters (stage "quality")
    NearDedup,         # MinHash LSH, after the filters
    DupClusters,       # output columns dup_cluster, dup_cluster_size
)

# the stages that can drop a document, in order: the rows of the funnel
FUNNEL_STAGES: tuple[str, ...] = tuple(stage.name for stage in PIPELINE if stage.drops_rows)


def build_stages(config: FactoryConfig) -> list[Stage]:
    """Every stage for a run of ``config``; reading plans the sources, so input errors come from here."""
    return [stage.from_config(config) for stage in PIPELINE]
