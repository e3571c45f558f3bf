"""Eval's node-loss drill: ``python -m eval run`` with ``ray.enabled: true`` submitted to the package's cluster
scores two tiny checkpoints on one model actor per worker node (eval.streaming: ``ray.util.ActorPool``); the node
of one actor is killed while batches are being scored. The job must finish with the undisturbed run's numbers in
results.json (Ray starts the actor again on the replacement node, it loads the batch's checkpoint, and the lost
batches are scored again), or fail with exit 1 naming the stage and the node. The checkpoints and sets are on
local disk, which every node of this one-machine cluster shares."""
from __future__ import annotations

import pytest

from .drill import lose_a_node, survived_or_named, when
from .eval_jobs import eval_config, eval_numbers

pytestmark = pytest.mark.slow


def test_eval_survives_a_node_lost_while_its_model_actors_score(cluster, eval_job_dir, eval_reference, tmp_path):
    output = tmp_path / "out"
    job = cluster.head.submit_in_background(eval_job_dir, "python", "-m", "eval", "run",
                                            eval_config(eval_job_dir, output))
    when(lambda: "/ base: " in job.output, job)  # the first checkpoint's first batches are scored, most are not
    lost = lose_a_node(cluster)
    outcome = survived_or_named(job.finish(), lost, output, lambda: eval_numbers(output) == eval_reference)
    print(f"eval, node lost while its model actors score: {outcome}")
