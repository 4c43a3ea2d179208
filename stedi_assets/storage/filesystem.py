"""Paths in the lake as Spark and Hadoop see them (local folders and S3 alike)."""

from typing import Any

from pyspark.sql import SparkSession


def spark_uri(uri: str) -> str:
    """Open-source Spark reaches S3 through the S3A connector, so ``s3://`` becomes ``s3a://``."""
    return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def hadoop_path(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    """The Hadoop ``FileSystem`` and ``Path`` (JVM objects) of ``uri``."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(spark_uri(uri))
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def path_exists(spark: SparkSession, uri: str) -> bool:
    fs, path = hadoop_path(spark, uri)
    return bool(fs.exists(path))
