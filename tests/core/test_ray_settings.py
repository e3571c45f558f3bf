"""A job's ray: keys that a Ray already running in the process (a recipe's, a test's) or a joined cluster cannot
honour are each named in one warning with the value in force; a null or the value in force says nothing."""
from __future__ import annotations

import os

import pytest

from core import progress, ray_runtime
from core.ray_runtime import RayConfig, ignored_settings, init_ray


@pytest.fixture
def warnings(ray_session, monkeypatch) -> list[str]:
    """The lines init_ray prints, with no key warned about yet in this process."""
    monkeypatch.setattr(ray_runtime, "_warned", set())
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    lines: list[str] = []
    with progress.lines_to(lines.append):
        yield lines


def test_a_num_cpus_the_running_ray_does_not_have_is_warned_about_once(ray_session, warnings):
    cpus = int(ray_session.cluster_resources()["CPU"])
    init_ray(RayConfig(num_cpus=cpus + 1))
    init_ray(RayConfig(num_cpus=cpus + 1))  # a second job of the same recipe: no second line
    assert warnings == [f"ray.num_cpus: {cpus + 1} ignored: Ray is already running with {cpus} CPUs "
                        "(the recipe's ray: section, or the cluster, decides)"]


def test_null_or_the_values_in_force_say_nothing(ray_session, warnings):
    resources = ray_session.cluster_resources()
    init_ray(RayConfig())
    init_ray(RayConfig(num_cpus=int(resources["CPU"]), object_store_memory=int(resources["object_store_memory"])))
    assert warnings == []


def test_an_object_store_size_the_running_ray_does_not_have_is_warned_about(ray_session, warnings):
    store = int(ray_session.cluster_resources()["object_store_memory"])
    init_ray(RayConfig(object_store_memory=store + 2**20))
    assert len(warnings) == 1 and warnings[0].startswith(f"ray.object_store_memory: {store + 2**20} ignored: "
                                                         f"Ray is already running with a {store}-byte object store")


def test_an_arrow_pool_other_than_the_workers_one_is_warned_about_and_indeed_not_applied(ray_session, warnings):
    @ray_session.remote(num_cpus=1)
    def pool_variable():
        return os.environ.get("ARROW_DEFAULT_MEMORY_POOL")

    in_force = ray_session.get(pool_variable.remote())
    assert in_force == "jemalloc"  # the session's Ray started like a job's: the default section's allocator
    init_ray(RayConfig(arrow_memory_pool="system"))
    init_ray(RayConfig(arrow_memory_pool=None))  # null is Arrow's own default (mimalloc): also not what runs
    assert [line.split(" ignored: ")[0] for line in warnings] == ["ray.arrow_memory_pool: system",
                                                                  "ray.arrow_memory_pool: None"]
    assert "workers run with jemalloc" in warnings[0]
    assert ray_session.get(pool_variable.remote()) == in_force  # what the warning says: the job's value never ran


def test_the_jobs_own_arrow_pool_variable_wins_so_the_key_is_not_warned_about(ray_session, warnings, monkeypatch):
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")  # e.g. ray job submit's runtime env
    init_ray(RayConfig(arrow_memory_pool="mimalloc"))
    assert warnings == []


def test_an_address_other_than_the_one_joined_is_warned_about(ray_session, warnings):
    init_ray(RayConfig(address="ray://elsewhere:10001"))
    assert [line.split(" ignored: ")[0] for line in warnings] == ["ray.address: ray://elsewhere:10001"]


def test_a_joined_cluster_ignores_the_local_ray_sizes():
    """ray job submit / RAY_ADDRESS / ray.address: the cluster's nodes decide CPUs and object store."""
    # no Ray is started here: what a job joining a cluster would be told about its local-Ray sizes
    joined = ignored_settings(RayConfig(num_cpus=1, object_store_memory=2**30), running=False, address="auto")
    assert [(key, value) for key, value, _ in joined] == [("num_cpus", "1"), ("object_store_memory", str(2**30))]
    assert all("joining the Ray cluster at auto" in why for _, _, why in joined)
    assert ignored_settings(RayConfig(), running=False, address="auto") == []


def test_a_recipe_step_names_its_own_section(ray_session, warnings):
    cpus = int(ray_session.cluster_resources()["CPU"])
    with ray_runtime.ray_keys_named(lambda key: f"factory.ray.{key}"):
        init_ray(RayConfig(num_cpus=cpus + 1))
    init_ray(RayConfig(num_cpus=cpus + 1))  # another section's key: the user wrote it there too
    assert [line.split(":")[0] for line in warnings] == ["factory.ray.num_cpus", "ray.num_cpus"]


def footer_readers_started(ray_session, folder) -> int:
    """FooterReader actors started by one Parquet read of ``folder`` (each a new worker process)."""
    from ray._private.state import actors

    def count():
        return sum(a["ActorClassName"] == "FooterReader" for a in actors().values())

    before = count()
    ray_session.data.read_parquet(str(folder)).materialize()
    return count() - before


def test_a_parquet_read_starts_the_configured_footer_readers_not_rays_32(ray_session, warnings, monkeypatch, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    for index in range(30):  # three of Ray's 10-file footer batches: Ray's own default would start 32 actors
        pq.write_table(pa.table({"id": [index]}), tmp_path / f"part-{index:02d}.parquet")
    monkeypatch.setattr(ray_runtime.FOOTER_READERS, "user_set", False)
    monkeypatch.delenv(ray_runtime.FOOTER_READERS.name, raising=False)
    init_ray(RayConfig())  # the default: one reader per read, a process that starts for every read
    assert footer_readers_started(ray_session, tmp_path) == 1
    init_ray(RayConfig(parquet_footer_readers=2))  # the next job in the same process has its own
    assert footer_readers_started(ray_session, tmp_path) == 2
    init_ray(RayConfig(parquet_footer_readers=None))  # null: Ray's own default
    assert ray_runtime.FOOTER_READERS.name not in os.environ
    monkeypatch.setattr(ray_runtime.FOOTER_READERS, "user_set", True)  # set by the job's environment
    monkeypatch.setenv(ray_runtime.FOOTER_READERS.name, "3")
    init_ray(RayConfig(parquet_footer_readers=1))
    assert os.environ[ray_runtime.FOOTER_READERS.name] == "3" and warnings == []
