"""Spark on an ``s3://`` lake: S3A's Hadoop options (landing JSON), and boto3 clients.

* Everything S3A needs (credentials chain, region, endpoint, path-style) is an ordinary Hadoop
  option. They are given as ``spark.hadoop.fs.s3a.*`` (which Spark copies into the Hadoop
  configuration when it starts the JVM) *and* set again on the running session's Hadoop
  configuration by ``LakeSparkResource``, so an s3:// run works even when a local-lake run in
  the same process started the session first. The jars are in ``storage/jars.py``.
* Credentials are the JVM's own: the AWS SDK's default chain, which reads environment
  variables as they were when the JVM started (then profiles and instance roles). A process
  that changes ``AWS_*`` variables later (the test suite does, for moto) must do so before
  Spark starts.

Data never passes through the driver or boto3 between S3 and Spark: S3A and Iceberg's S3FileIO
stream it.
"""

import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

import boto3
from dagster import InitResourceContext
from dagster_aws.s3 import S3Resource
from dagster_pyspark import PySparkResource
from pyspark.sql import SparkSession

HADOOP_PREFIX = "spark.hadoop."

# The AWS SDK v2's default chain: env, system properties, web identity, ~/.aws profile,
# container and instance roles. (S3A's own default list has no profile support.)
DEFAULT_CREDENTIALS_PROVIDER = "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider"


def endpoint_url() -> str | None:
    """The S3 endpoint override, as boto3 reads it: ``AWS_ENDPOINT_URL_S3``, then
    ``AWS_ENDPOINT_URL``; ``None`` for AWS itself."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def aws_region() -> str | None:
    """The region from the standard AWS chain: ``AWS_REGION`` (which the AWS SDKs read but
    boto3 does not), else boto3's ``AWS_DEFAULT_REGION`` or the profile's config."""
    return os.environ.get("AWS_REGION") or boto3.session.Session().region_name


def s3a_hadoop_options() -> dict[str, str]:
    """The Hadoop options for S3A, without the ``spark.hadoop.`` prefix."""
    options = {
        "fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "fs.s3a.aws.credentials.provider": DEFAULT_CREDENTIALS_PROVIDER,
    }
    region = aws_region()
    if region:
        options["fs.s3a.endpoint.region"] = region
    endpoint = endpoint_url()
    if endpoint:
        # S3-compatible stores and moto: no bucket subdomains, and plain http if so given.
        options["fs.s3a.endpoint"] = endpoint
        options["fs.s3a.path.style.access"] = "true"
        options["fs.s3a.connection.ssl.enabled"] = str(urlparse(endpoint).scheme == "https").lower()
    return options


def s3a_spark_config() -> dict[str, str]:
    """The ``spark.hadoop.*`` options an s3:// lake needs."""
    return {HADOOP_PREFIX + key: value for key, value in s3a_hadoop_options().items()}


def apply_hadoop_options(spark: SparkSession, config: Mapping[str, Any]) -> None:
    """Sets every ``spark.hadoop.*`` entry of ``config`` on the running session's Hadoop
    configuration (Spark only copies them there when the JVM starts)."""
    hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in config.items():
        if key.startswith(HADOOP_PREFIX):
            hadoop_conf.set(key.removeprefix(HADOOP_PREFIX), str(value))


class LakeSparkResource(PySparkResource):
    """``PySparkResource`` whose ``spark.hadoop.*`` options also reach a session that was
    already running in this process (e.g. started by a local-lake run)."""

    def setup_for_execution(self, context: InitResourceContext) -> None:
        super().setup_for_execution(context)
        apply_hadoop_options(self.spark_session, self.spark_config)
        # Spark's own WARN lines (planner hints, retries it handles) are noise in a run's log;
        # STEDI_SPARK_LOG_LEVEL=WARN (or INFO) brings them back.
        self.spark_session.sparkContext.setLogLevel(
            os.environ.get("STEDI_SPARK_LOG_LEVEL", "ERROR")
        )


def s3_resource() -> S3Resource:
    """dagster-aws's S3 resource, configured from the environment (credentials and region
    from the AWS chain; the endpoint override, if any, from ``AWS_ENDPOINT_URL``)."""
    return S3Resource(region_name=aws_region(), endpoint_url=endpoint_url())


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> ``("bucket", "some/prefix")``. Split by hand, not as a
    URL: a key may hold ``?`` or ``#``, which a URL parser would cut off."""
    scheme, separator, rest = uri.partition("://")
    bucket, _, prefix = rest.partition("/")
    if scheme not in ("s3", "s3a") or not separator or not bucket:
        raise ValueError(f"{uri!r} is not an s3://bucket/prefix URI")
    return bucket, prefix.strip("/")


def upload_objects(lake: str, objects: Sequence[tuple[str, bytes]]) -> int:
    """Puts each ``(relative path, bytes)`` below the ``s3://bucket/prefix`` lake (small files,
    such as simulated landing data); returns how many were written."""
    bucket, prefix = split_s3_uri(lake)
    client = s3_resource().get_client()
    for relative, body in objects:
        key = f"{prefix}/{relative}" if prefix else relative
        client.put_object(Bucket=bucket, Key=key, Body=body)
    return len(objects)
