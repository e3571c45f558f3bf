"""Work that Ray lost with a dead node fails naming the stage and the node (exit 1), not as a traceback from
inside Ray; every other error passes through untouched. The real node loss: tests/cluster/test_factory_node_loss.py."""
from __future__ import annotations

import pytest
import ray.exceptions

from core.errors import NodeLostError, exit_code
from core.node_loss import node_loss_named

NODE = "c25522ccfc4ee76349149d03d98ecc399a61c5f5425e1a59da3644c0"


def test_a_dead_node_is_named_with_the_stage_and_exits_1():
    said = f"^write: Ray node {NODE} died .*NodeDiedError.*run the same command"
    with pytest.raises(NodeLostError, match=said) as err:
        with node_loss_named("write"):
            raise ray.exceptions.NodeDiedError(f"node {NODE} died")
    assert exit_code(err.value) == 1


def test_a_task_error_that_says_an_actor_died_with_its_node_is_found_through_its_cause():
    # what Ray Data raised when a reader actor was placed on a node just killed: only the original error's text
    # survives (Ray could not deserialize it), chained under the task's own error
    text = ("ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task.\n"
            f"The actor died because its node has died. Node Id: {NODE}")
    with pytest.raises(NodeLostError, match=f"^near_dedup: Ray node {NODE} died .*UnserializableException"):
        with node_loss_named("near_dedup"):
            try:
                raise ray.exceptions.UnserializableException(text)
            except ray.exceptions.UnserializableException as lost:
                raise RuntimeError("the pass failed") from lost


def test_a_training_worker_lost_with_its_node_is_found_in_ray_trains_worker_group_error():
    # what trainer.fit() raises when its workers died with their node and no restart is left: the workers' failures
    # kept by rank (no cause chain), each a failed health check holding the actor's death as the GCS reported it
    from ray.core.generated.common_pb2 import ActorDiedErrorContext
    from ray.train.v2._internal.exceptions import WorkerHealthCheckFailedError
    from ray.train.v2.api.exceptions import WorkerGroupError

    death = ray.exceptions.ActorDiedError(ActorDiedErrorContext(
        class_name="RayTrainWorker", actor_id=bytes(16),
        error_message=f"The actor died because its node has died. Node Id: {NODE}"))
    failed = WorkerGroupError("worker 0 failed", {0: WorkerHealthCheckFailedError("health check failed", death)})
    with pytest.raises(NodeLostError, match=f"^fit: Ray node {NODE} died .*ActorDiedError"):
        with node_loss_named("fit"):
            raise failed


@pytest.mark.parametrize("error", [ValueError("a bad row"), ray.exceptions.RayError("a task's own bug")])
def test_other_errors_pass_through_untouched(error):
    with pytest.raises(type(error)) as raised:
        with node_loss_named("filters"):
            raise error
    assert raised.value is error
