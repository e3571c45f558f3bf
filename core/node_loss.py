"""A Ray node lost under a stage, said as such: when Ray cannot recover the work a dead node held (an actor or
an object that lived only there), the stage fails with ``NodeLostError`` naming the stage and the node, instead
of a traceback from deep inside Ray. What Ray recovers by itself (retried tasks, objects rebuilt from their
lineage) never reaches here: the job just goes on."""
from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from core.errors import NodeLostError

# how Ray says that a node died, in the errors it raises (the actor's, a task's that used it, or the text of one
# it could not deserialize: UnserializableException keeps only that text)
_NODE_DIED = re.compile(r"its node has died|NodeDiedError|ObjectLostError|node was terminated unexpectedly|"
                        r"lost due to node failure", re.IGNORECASE)
_NODE_ID = re.compile(r"node(?:[ _]id)?:?\s*([0-9a-f]{56})", re.IGNORECASE)
# how long an unreachable actor's node may take to be declared dead: Ray's GCS misses 5 health checks 3 s apart
# (by default) before it says so
DEATH_NOTICED_WITHIN_S = 60


@contextmanager
def node_loss_named(stage: str) -> Iterator[None]:
    """Ray's errors for work lost with a dead node, raised inside the block, as a ``NodeLostError`` naming
    ``stage`` and the node."""
    try:
        yield
    except Exception as exc:
        lost = lost_node_error(exc)
        if lost is None:
            raise
        raise NodeLostError(f"{stage}: {lost_node_named(lost)} died and Ray could not recover its work "
                            f"({type(lost).__name__}); nothing was published: run the same command again") from exc


def lost_node_error(exc: BaseException) -> BaseException | None:
    """The Ray error among ``exc`` and the errors behind it (``behind``) that says a node died; None if none."""
    exceptions = sys.modules.get("ray.exceptions")  # looked up: a job that never imported Ray cannot get its errors
    if exceptions is None:
        return None
    seen: set[int] = set()
    waiting = [exc]
    while waiting:
        exc = waiting.pop(0)
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        if isinstance(exc, (exceptions.NodeDiedError, exceptions.ObjectLostError)) or \
                (isinstance(exc, exceptions.RayError) and _NODE_DIED.search(str(exc))) or \
                (isinstance(exc, exceptions.ActorUnavailableError) and declared_dead(actor_node(exc))):
            return exc
        waiting += behind(exc)
    return None


def behind(exc: BaseException) -> list[BaseException | None]:
    """The errors ``exc`` was raised from: its causes (a task error's, Python's), and, for Ray Train's errors (which
    carry no cause), each worker's failure in a worker group's error and the failure of a worker's health check."""
    failures = getattr(exc, "worker_failures", None)
    return [getattr(exc, "cause", None), exc.__cause__, exc.__context__, getattr(exc, "health_check_failure", None),
            *(failures.values() if isinstance(failures, dict) else ())]


def lost_node_named(error: BaseException) -> str:
    """``Ray node <id> (<ip>)`` for the node ``error`` names; else the nodes Ray lists dead."""
    import ray

    nodes = {node["NodeID"]: node for node in ray.nodes()} if ray.is_initialized() else {}
    named = _NODE_ID.findall(str(error)) or [node for node in [actor_node(error)] if node]
    ids = list(dict.fromkeys(named)) or [node_id for node_id, node in nodes.items() if not node.get("Alive")]
    if not ids:
        return "a Ray node"
    where = [f"{node_id} ({nodes[node_id]['NodeManagerAddress']})" if node_id in nodes else node_id for node_id in ids]
    return f"Ray node {', '.join(where)}" if len(where) == 1 else f"one of the Ray nodes {', '.join(where)}"


def actor_node(error: BaseException) -> str | None:
    """The node of the actor an actor error names (Ray's state API), None when unknown. An actor that cannot be
    reached says only its id (a training worker whose node was killed, before the GCS noticed the node died)."""
    actor_id = getattr(error, "actor_id", None)
    if not actor_id:
        return None
    try:
        from ray.util.state import get_actor

        actor = get_actor(actor_id)
    except Exception:  # no dashboard (a local Ray started without one): no state API to ask
        return None
    return actor.node_id if actor is not None else None


def declared_dead(node_id: str | None, within_s: float = DEATH_NOTICED_WITHIN_S) -> bool:
    """Whether Ray declares ``node_id`` dead within ``within_s`` (an unreachable node is declared dead only after
    missed health checks); False for a node that stays alive, or no node."""
    import ray

    deadline = time.monotonic() + within_s
    while node_id and ray.is_initialized():
        if any(node["NodeID"] == node_id and not node["Alive"] for node in ray.nodes()):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return False
