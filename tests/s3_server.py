"""A real S3 API server on loopback (moto's standalone server, in a thread of the test process), stopped by
its own handle: the object-storage tests read and write through it exactly as through AWS."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

BUCKET = "corpus"


@contextmanager
def s3_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_env(endpoint: str) -> dict[str, str]:
    """The standard variables a user sets for an S3-compatible store: no config change needed."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret",
            "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


@contextmanager
def s3_store():
    """(endpoint, environment) of a fresh server with the bucket ``corpus``; the variables are set in this
    process while it runs."""
    import boto3

    with s3_server() as endpoint:
        env = s3_env(endpoint)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
            yield endpoint, env
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(scope="module")
def s3():
    """``s3_store`` for one module's tests."""
    with s3_store() as store:
        yield store


def upload(endpoint: str, local: Path, key: str) -> str:
    """``local`` put at ``s3://corpus/<key>``; returns that URI."""
    import boto3

    boto3.client("s3", endpoint_url=endpoint).upload_file(str(local), BUCKET, key)
    return f"s3://{BUCKET}/{key}"
