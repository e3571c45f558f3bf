"""A job's input on object storage that cannot be read is exit 2 before any work, the message naming the URI
and the config key: a missing bucket, a missing key, credentials the store refuses (a second S3 server that
checks them), and a scheme whose filesystem is not installed (the package to install named); and prepare's
input check reading a factory output published on s3://."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import boto3
import pytest
import yaml
from prepare_corpus import write_factory_output
from s3_server import s3, s3_env  # noqa: F401 (the fixture)

from factory.__main__ import main as factory_main
from quality.__main__ import main as quality_main


def prepare_config(tmp_path, input_dir: str):
    path = tmp_path / "prepare.yaml"
    path.write_text(yaml.safe_dump({"input_dir": input_dir, "output_dir": str(tmp_path / "out")}))
    return str(path)


@pytest.mark.parametrize("uri, says", [
    ("s3://no-such-bucket/factory", "the bucket 'no-such-bucket' does not exist"),
    ("s3://corpus/no/such/output", "s3://corpus/no/such/output does not exist"),
])
def test_a_missing_bucket_or_key_is_exit_2_naming_it_and_the_key(tmp_path, capsys, s3, uri, says):  # noqa: F811
    assert quality_main(["validate", "documents", uri, "--docs-dir", str(tmp_path / "docs")]) == 2
    err = capsys.readouterr().err
    assert f"PATH: {uri}" in err and says in err and "Traceback" not in err
    assert not (tmp_path / "docs").exists()  # nothing rendered

    assert factory_main(["prepare", prepare_config(tmp_path, uri)]) == 2
    err = capsys.readouterr().err
    assert f"input_dir: {uri}" in err and says in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_prepare_reads_a_factory_output_published_on_s3(tmp_path, s3):  # noqa: F811
    from factory.prepare.inputs import check_factory_output, document_files

    output = "s3://corpus/errors/factory"
    write_factory_output(output, ["a domain text", "another one"], ["some news"])
    assert check_factory_output(output)["outputs"]["documents"]["rows"] == 3
    files = document_files(output)
    assert len(files) == 2 and all(f.startswith(f"{output}/runs/") and "/documents/" in f for f in files)


@contextmanager
def checking_s3_server():
    """A moto server in its own process that checks credentials (its IAM knows no user) once it has served the
    set-up's first two requests unchecked: the bucket, and one object in it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "2"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the checking S3 server did not start"
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, **_keys(s3_env(endpoint)))
        client.create_bucket(Bucket="locked")
        client.put_object(Bucket="locked", Key="data/part-0.parquet", Body=b"PAR1")
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def _keys(env: dict) -> dict:
    return {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
            "region_name": env["AWS_REGION"]}


def test_refused_credentials_are_exit_2_saying_so_and_naming_the_uri(tmp_path, capsys, monkeypatch):
    with checking_s3_server() as endpoint:
        for key, value in {**s3_env(endpoint), "AWS_ACCESS_KEY_ID": "AKIANOSUCHKEY0000000"}.items():
            monkeypatch.setenv(key, value)
        uri = "s3://locked/data"  # it exists: only the credentials stand in the way

        assert quality_main(["validate", "documents", uri, "--docs-dir", str(tmp_path / "docs")]) == 2
        err = capsys.readouterr().err
        assert f"PATH: {uri}: cannot be read: the credentials were refused" in err and "Traceback" not in err

        assert factory_main(["prepare", prepare_config(tmp_path, uri)]) == 2
        err = capsys.readouterr().err
        assert f"input_dir: {uri}: cannot be read: the credentials were refused" in err
        assert "AKIANOSUCHKEY" not in err  # nothing secret, not even the key id, in a message


def test_a_scheme_with_no_filesystem_installed_names_the_package(tmp_path, capsys):
    import importlib.util

    if importlib.util.find_spec("adlfs") is not None:
        pytest.skip("adlfs is installed here: az:// has a filesystem")
    assert quality_main(["validate", "documents", "az://container/data"]) == 2
    err = capsys.readouterr().err
    assert "PATH: az://container/data: no filesystem for az:// is installed; pip install adlfs" in err

    assert factory_main(["prepare", prepare_config(tmp_path, "az://container/factory")]) == 2
    assert "input_dir: az://container/factory: no filesystem for az:// is installed; pip install adlfs" in \
        capsys.readouterr().err

