"""At run time, work that asks for a shape no node of the cluster can ever hold is a named error within a
minute, not a wait until the stall timeout (Ray queues such work forever; its autoscaler only logs it).

The checks before any work (``core.cluster_shape.refuse_unplaceable``) judge the shapes a config names. This
watch judges every shape the cluster is asked for while the job runs (a library's task, an actor or placement
group built at run time): every ``POLL_S`` it reads the pending demand the GCS reports to the autoscaler
(``ray.autoscaler.v2.sdk.get_cluster_status``) and judges each shape against what the cluster can ever have
(``running_cluster_offer``: its autoscaler's node types, else the nodes present). A shape still unplaceable
after ``GRACE_S`` stops the job: the main thread is interrupted, and the command exits 1 naming the shape."""
from __future__ import annotations

import re
import threading
from collections import Counter

from core.cluster_shape import ClusterOffer, format_shape, running_cluster_offer
from core.errors import UnplaceableError
from core.watchdog import interrupt_then_exit

POLL_S = 5.0
# how long a shape stays unplaceable before the job is stopped: on a cluster without an autoscaler, someone may be
# adding the node that holds it (as the node-loss drills' replacements do)
GRACE_S = 20.0

# the resources Ray gives a placement group's bundles (CPU_group_<pg id>, CPU_group_<index>_<pg id>)
PLACEMENT_GROUP_RESOURCE = re.compile(r"_group_(\d+_)?[0-9a-f]{16,}$")

_fired: list[str] = []  # the message, once the watch has stopped the job
_started: set[str] = set()  # the GCS addresses watched by this process


def demanded_shapes(status) -> list[dict[str, float]]:
    """Each shape the cluster is asked for now: one task's or actor's resources, or one placement group bundle
    (a STRICT_PACK group whole, as it must land on one node)."""
    demands = status.resource_demands
    shapes = [request.bundle for demand in demands.ray_task_actor_demand for request in demand.bundles_by_count]
    for group in demands.placement_group_demand:
        bundles = [request.bundle for request in group.bundles_by_count for _ in range(request.count)]
        if group.strategy == "STRICT_PACK":
            bundles = [dict(sum((Counter(bundle) for bundle in bundles), Counter()))]
        shapes += bundles
    return shapes


def never_placeable(shape: dict[str, float], offer: ClusterOffer) -> bool:
    """True when no node the cluster can ever have holds ``shape``. A task bound to a placement group (its
    ``CPU_group_<id>`` resources: the group itself is judged) or pinned to a node (``node:<ip>``) is not judged."""
    if any(PLACEMENT_GROUP_RESOURCE.search(name) for name in shape):
        return False
    return offer.fits({k: v for k, v in shape.items() if not k.startswith("node:")}) is False


class InfeasibleWatch:
    def __init__(self, gcs_address: str, poll_s: float | None = None, grace_s: float | None = None,
                 on_unplaceable=None):
        self.gcs_address, self.poll_s, self.grace_s = gcs_address, poll_s or POLL_S, grace_s or GRACE_S
        self.on_unplaceable = on_unplaceable or interrupt_then_exit(grace_s=60.0, error=UnplaceableError)
        self._since: dict[str, float] = {}  # shape -> when first seen unplaceable
        self._autoscaled: ClusterOffer | None = None  # an autoscaler's node types do not change: read once

    def check(self, now: float) -> str | None:
        """The message for a shape unplaceable for ``grace_s`` by ``now``, else None."""
        from ray.autoscaler.v2.sdk import get_cluster_status

        status = get_cluster_status(self.gcs_address)
        offer = self._autoscaled or running_cluster_offer()  # without an autoscaler: the nodes present now
        self._autoscaled = offer if offer.autoscaled else None
        pending = {format_shape(s): s for s in demanded_shapes(status) if never_placeable(s, offer)}
        self._since = {key: self._since.get(key, now) for key in pending}
        for key, since in self._since.items():
            if now - since >= self.grace_s:
                return (f"the job asks the cluster for {key}, which fits no node it can ever have; it offers "
                        f"{offer.describe()} ({offer.source}). Nothing would ever run it: stopped after "
                        f"{now - since:.0f} s instead of waiting. Ask for less, or add a node type that holds it")
        return None

    def _watch(self) -> None:
        import time

        import ray

        while ray.is_initialized():
            time.sleep(self.poll_s)
            if not ray.is_initialized() or ray.get_runtime_context().gcs_address != self.gcs_address:
                return  # this process left that cluster (a test's Ray shut down, another started)
            try:
                message = self.check(time.monotonic())
            except Exception:  # the cluster is going away (the job ends) or briefly unreachable: look again later
                continue
            if message:
                _fired.append(message)
                self.on_unplaceable(message)
                return

    def start(self) -> None:
        threading.Thread(target=self._watch, name="infeasible-watch", daemon=True).start()


def watch_for_unplaceable_work() -> None:
    """Start the watch for the Ray this process is connected to (once per cluster)."""
    import ray

    address = ray.get_runtime_context().gcs_address
    if address not in _started:
        _started.add(address)
        InfeasibleWatch(address).start()


def fired() -> str | None:
    """The watch's message once it has stopped the job."""
    return _fired[0] if _fired else None
