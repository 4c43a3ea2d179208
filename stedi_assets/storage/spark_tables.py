"""Reading and writing lakehouse tables with Spark: landing JSON in, Parquet out.

Data never passes through the driver: Spark reads and writes the lake directly, and table
replacement is done with Hadoop FileSystem renames, which work for local paths and S3A alike.
"""

import uuid

from pyspark.sql import DataFrame, SparkSession

from stedi_assets.storage.ddl import landing_ddl
from stedi_assets.storage.layout import TableSpec

# Spark puts a line it cannot parse against the DDL schema here (PERMISSIVE mode).
CORRUPT_RECORD = "_corrupt_record"


def spark_uri(uri: str) -> str:
    """Open-source Spark reaches S3 through the S3A connector, so ``s3://`` becomes ``s3a://``."""
    return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri


def _hadoop_path(spark: SparkSession, uri: str):  # -> (FileSystem, Path) JVM objects
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(spark_uri(uri))
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def path_exists(spark: SparkSession, uri: str) -> bool:
    fs, path = _hadoop_path(spark, uri)
    return bool(fs.exists(path))


def read_landing(spark: SparkSession, lake: str, spec: TableSpec) -> DataFrame:
    """All JSON-lines files below the table's landing folder, at any depth, read with the
    schema of its DDL in ``sql/``. Lines that do not fit the schema keep their raw text in
    ``_corrupt_record`` so that a check can count them."""
    ddl = landing_ddl(spec.name)
    location = spec.location(lake)
    if not path_exists(spark, location):
        raise FileNotFoundError(
            f"no landing data for {spec.name}: {location} does not exist "
            f"(is the lake root {lake!r} right?)"
        )
    schema = ddl.spark_schema().add(CORRUPT_RECORD, "string")
    return (
        spark.read.schema(schema)
        .option("recursiveFileLookup", "true")
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
        .json(spark_uri(location))
    )


def read_parquet(spark: SparkSession, location: str) -> DataFrame:
    return spark.read.parquet(spark_uri(location))


def publish_parquet(df: DataFrame, lake: str, spec: TableSpec) -> str:
    """Writes ``df`` as the new version of ``spec``'s table and returns its location.

    The data is first written completely to a staging folder, then swapped in with renames,
    so a failed write never leaves a half-written table at the table's location.
    """
    spark = df.sparkSession
    token = uuid.uuid4().hex
    target = spec.location(lake)
    staging = f"{lake.rstrip('/')}/_staging/{spec.relative_path}/{token}"
    retired = f"{lake.rstrip('/')}/_retired/{spec.relative_path}/{token}"

    df.write.mode("errorifexists").parquet(spark_uri(staging))

    fs, target_path = _hadoop_path(spark, target)
    _, staging_path = _hadoop_path(spark, staging)
    _, retired_path = _hadoop_path(spark, retired)
    if fs.exists(target_path):
        fs.mkdirs(retired_path.getParent())
        if not fs.rename(target_path, retired_path):
            raise OSError(f"could not move the previous version of {target} aside")
    fs.mkdirs(target_path.getParent())
    if not fs.rename(staging_path, target_path):
        raise OSError(f"could not move the new version of {target} into place from {staging}")
    fs.delete(retired_path, True)
    return target


def hive_type(data_type_simple_string: str) -> str:
    """Spark's simple type names are Hive's, except for a few spellings."""
    return {"integer": "int", "long": "bigint", "short": "smallint", "byte": "tinyint"}.get(
        data_type_simple_string, data_type_simple_string
    )
