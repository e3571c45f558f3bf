"""``cluster.yaml`` is proven against the configs shipped for a cluster: every training worker, eval model actor
and synth client actor fits one of its node types, and the cluster can grow to hold each gang whole; a shape no
node type holds is refused before any work, naming the shape, the key and the node types."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from conftest import REPO, subprocess_env
from train_fixtures import tiny_model_dir

from core.cluster_shape import ClusterOffer, NodeType, offer_from_cluster_config, refuse_unplaceable
from core.config import read_yaml
from core.errors import ConfigError
from eval.config import DEFAULTS as EVAL_DEFAULTS
from train.config import load_train_config
from train.launch import worker_shape

CLUSTER = offer_from_cluster_config(REPO / "cluster.yaml")
SYNTH_ACTOR = {"CPU": 0.5}  # core.llm.scale: an answer-client actor mostly waits on the network


def fits_whole(shape: dict, count: int) -> bool:
    grown = CLUSTER.max_resources()
    return CLUSTER.fits(shape) is True and all(grown.get(k, 0) >= v * count for k, v in shape.items() if v)


@pytest.mark.parametrize("stage", ["cpt", "sft", "dpo"])
def test_every_training_config_fits_a_node_type_and_the_cluster_holds_its_gang(stage):
    config = load_train_config(REPO / "configs" / f"train_{stage}.yaml", stage, check_inputs=False)
    assert fits_whole(worker_shape(config), config.scaling.num_workers), worker_shape(config)


def test_the_cluster_recipe_fits_train_eval_and_synth():
    recipe = read_yaml(REPO / "configs" / "recipe-cluster.yaml")
    scaling = recipe["train"]["common"]["scaling"]
    train = {"CPU": 1, **({"GPU": 1} if scaling["use_gpu"] else {}), **scaling["resources_per_worker"]}
    assert fits_whole(train, scaling["num_workers"])
    eval_ray = {**read_yaml(EVAL_DEFAULTS)["ray"], **recipe["eval"]["ray"]}
    actor = {"CPU": eval_ray["num_cpus_per_actor"], "GPU": eval_ray["num_gpus_per_actor"]}
    assert fits_whole(actor, eval_ray["concurrency"])
    for step in ("sft", "preferences"):
        assert fits_whole(SYNTH_ACTOR, recipe["synth"][step]["ray"]["actors"])


def test_a_shape_no_node_type_holds_is_refused_naming_shape_key_and_node_types():
    one_cpu = ClusterOffer([NodeType("head", {"CPU": 0}, 1, head=True), NodeType("worker.cpu", {"CPU": 1}, 3)],
                           "the autoscaler's node types", autoscaled=True)
    assert one_cpu.max_resources() == {"CPU": 3}
    with pytest.raises(ConfigError, match=r"^scaling.resources_per_worker: \{CPU: 4\} fits no node this cluster can "
                                          r"ever have; it offers head \{CPU: 0\} x 1, worker.cpu \{CPU: 1\} x 3"):
        refuse_unplaceable({"CPU": 4}, "scaling.resources_per_worker", one_cpu)
    refuse_unplaceable({"CPU": 1}, "scaling.resources_per_worker", one_cpu)  # fits: no error


def test_train_plan_checks_a_config_against_the_cluster_offline(tmp_path):
    def plan(resources_per_worker: dict) -> subprocess.CompletedProcess:
        config = yaml.safe_load((REPO / "configs" / "train_cpt.yaml").read_text())
        config["model"]["path"] = str(tiny_model_dir(tmp_path / "tiny"))  # the plan reads the model's config
        config["scaling"]["resources_per_worker"] = resources_per_worker
        (tmp_path / "cpt.yaml").write_text(yaml.safe_dump(config))
        return subprocess.run([sys.executable, "-m", "train", "plan", str(tmp_path / "cpt.yaml"), "--cluster",
                               str(REPO / "cluster.yaml")], cwd=REPO, env=subprocess_env(HF_HUB_OFFLINE="1"),
                              capture_output=True, text=True, timeout=120)

    fits = plan({"GPU": 1, "CPU": 4})
    assert fits.returncode == 0, fits.stderr
    assert "workers: 2 x {CPU: 4, GPU: 1}, each fits a node type of" in fits.stdout
    refused = plan({"GPU": 16, "CPU": 4})  # 16 GPUs on one node: no node type has them
    assert refused.returncode == 2
    assert "scaling.resources_per_worker: {CPU: 4, GPU: 16} fits no node" in refused.stderr
    assert "worker.gpu8 {CPU: 96, GPU: 8} x 2" in refused.stderr
