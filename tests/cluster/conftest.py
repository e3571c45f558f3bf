"""The package's one cluster (a head that only runs drivers and two 1-CPU worker nodes, ``ray_cluster``) and
the S3 server its nodes reach through the AWS_* variables a user sets; both live until the package's last test."""
from __future__ import annotations

from pathlib import Path

import pytest
from ray_cluster import RayCluster, ray_cluster
from s3_server import s3_store


@pytest.fixture(scope="package")
def s3():
    """The package's S3 server (this replaces the per-module fixture: the cluster's nodes keep its address)."""
    with s3_store() as store:
        yield store


@pytest.fixture(scope="package")
def node_cache(tmp_path_factory) -> Path:
    """The nodes' local state folder (DOMAIN_FACTORY_CACHE), where a job keeps what it must not put on the store."""
    return tmp_path_factory.mktemp("node-cache")


@pytest.fixture(scope="package")
def cluster(tmp_path_factory, s3, node_cache) -> RayCluster:
    with ray_cluster(tmp_path_factory.mktemp("cluster"), DOMAIN_FACTORY_CACHE=str(node_cache)) as running:
        yield running
