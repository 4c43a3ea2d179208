"""AWS in the tests: one moto server for the whole session, reached over real HTTP.

``moto_endpoint`` starts moto's ``ThreadedMotoServer`` on 127.0.0.1 (a random free port),
points the AWS chain at it (``AWS_ENDPOINT_URL``, fake credentials, ``us-east-1``, no config
files of the machine's) for the whole session and gives back the endpoint URL. Imported by
``conftest.py`` so that every test module shares the one server.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from stedi_assets.storage.jars import JarsMissing, require_jars

REGION = "us-east-1"


def require_s3a_jars() -> None:
    """S3 tests fail (never skip) without the jars, and say how to get them."""
    try:
        require_jars()
    except JarsMissing as missing:
        pytest.fail(f"{missing} before the tests", pytrace=False)


# autouse: the AWS environment must be in place before the suite's one JVM starts, because the
# JVM's credential chain reads environment variables once, at launch; a local-lake test that
# starts Spark first would otherwise leave S3A without credentials. It also keeps every test
# away from real AWS.
@pytest.fixture(scope="session", autouse=True)
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()  # the port the OS actually gave
    endpoint = f"http://{host}:{port}"
    nowhere = tmp_path_factory.mktemp("aws") / "none"
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("AWS_"):  # no real profile, role or endpoint leaks in
                env.delenv(name)
        env.setenv("AWS_ENDPOINT_URL", endpoint)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_SESSION_TOKEN", "testing")
        env.setenv("AWS_REGION", REGION)
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.setenv("AWS_CONFIG_FILE", str(Path(nowhere) / "config"))
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(Path(nowhere) / "credentials"))
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        try:
            yield endpoint
        finally:
            server.stop()
