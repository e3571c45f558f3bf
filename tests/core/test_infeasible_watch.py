"""Work asking for a shape no node can ever hold is stopped with a named error within a minute: a real process
that joins a real local Ray through ``init_ray`` and waits on a task no node can run exits 1, naming the shape
and what the cluster has, instead of waiting for the stall timeout."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace

import pytest
from conftest import subprocess_env

from core.cluster_shape import ClusterOffer, NodeType
from core.infeasible_watch import GRACE_S, demanded_shapes, never_placeable

JOB = textwrap.dedent("""
    import sys
    import ray
    from core.cli import run_command
    from core.ray_runtime import RayConfig, init_ray

    def action():
        init_ray(RayConfig(num_cpus=1))

        @ray.remote(resources={"gpu_stand_in": 1})
        def task():
            return 1

        print("submitted", flush=True)
        return ray.get(task.remote())

    sys.exit(run_command(action))
""")


@pytest.mark.slow
def test_a_task_no_node_can_hold_ends_the_job_naming_its_shape(tmp_path):
    job = subprocess.Popen([sys.executable, "-c", JOB], env=subprocess_env(), cwd=tmp_path, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert job.stdout.readline().strip() == "submitted", job.communicate(timeout=120)
    waited = time.monotonic()
    _, stderr = job.communicate(timeout=120)
    waited = time.monotonic() - waited
    assert job.returncode == 1, stderr[-3000:]
    stopped = re.search(r"error: the job asks the cluster for \{CPU: 1, gpu_stand_in: 1\}, which fits no node it "
                        r"can ever have; it offers .*\{CPU: 1\} x 1 \(the nodes present \(no autoscaler\)\)\. Nothing "
                        r"would ever run it: stopped after (\d+) s", stderr)
    assert stopped, stderr[-3000:]
    assert GRACE_S <= int(stopped.group(1)) < 60 and waited < 60, (stopped.group(0), waited)


PG_RESOURCE = "CPU_group_" + "4f" * 18  # what a task inside a placement group asks for, named by the group's id


def test_shapes_are_judged_as_ray_places_them():
    offer = ClusterOffer([NodeType("head", {"CPU": 0}, 1, head=True), NodeType("worker.cpu", {"CPU": 4}, 3)],
                         "test", autoscaled=True)
    from ray.autoscaler.v2.schema import (PlacementGroupResourceDemand, RayTaskActorDemand, ResourceDemandSummary,
                                          ResourceRequestByCount)

    summary = ResourceDemandSummary(
        ray_task_actor_demand=[RayTaskActorDemand([ResourceRequestByCount({"CPU": 1, "memory": 10 << 30}, 2)]),
                               RayTaskActorDemand([ResourceRequestByCount({PG_RESOURCE: 8}, 1)])],
        placement_group_demand=[PlacementGroupResourceDemand([ResourceRequestByCount({"CPU": 2}, 3)], "", strategy=s)
                                for s in ("PACK", "STRICT_PACK")])
    shapes = demanded_shapes(SimpleNamespace(resource_demands=summary))  # what get_cluster_status returns, in part
    assert shapes == [{"CPU": 1, "memory": 10 << 30}, {PG_RESOURCE: 8}, {"CPU": 2}, {"CPU": 2}, {"CPU": 2},
                      {"CPU": 6}]  # a STRICT_PACK group lands whole on one node
    # memory is no shape; a task inside a placement group is judged through its group; a strict pack is not split
    assert [never_placeable(shape, offer) for shape in shapes] == [False, False, False, False, False, True]
    assert never_placeable({"CPU": 1, "node:10.0.0.1": 0.01}, offer) is False
    assert never_placeable({"CPU": 1, "GPU": 1}, offer) is True
    assert never_placeable({"CPU": 1, "gpu_group_a": 1}, offer) is True  # a custom resource, not a group's
