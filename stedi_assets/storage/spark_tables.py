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


def read_parquet(spark: SparkSession, location: str, empty_schema: str | None = None) -> DataFrame:
    """A Parquet table (partition folders discovered). A partitioned table that has no data
    yet has no folder: with ``empty_schema`` (a DDL string) that reads as an empty table."""
    if empty_schema is not None and not path_exists(spark, location):
        return spark.createDataFrame([], empty_schema)
    return spark.read.parquet(spark_uri(location))


class _Publisher:
    """Writes a new version next to the table, then swaps it in with renames: a failed write
    never leaves a half-written table (or day) at the table's location."""

    def __init__(self, spark: SparkSession, lake: str, spec: TableSpec) -> None:
        self.token = uuid.uuid4().hex
        root = lake.rstrip("/")
        self.target = spec.location(lake)
        self.staging = f"{root}/_staging/{spec.relative_path}/{self.token}/"
        self.retired = f"{root}/_retired/{spec.relative_path}/{self.token}/"
        self.fs, _ = _hadoop_path(spark, self.target)
        self._spark = spark

    def path(self, uri: str):  # -> JVM Path
        return _hadoop_path(self._spark, uri)[1]

    def replace(self, relative: str = "") -> None:
        """Moves ``staging/relative`` over ``target/relative`` (removing the target when the
        staging side has nothing there)."""
        new, current, old = (
            self.path(base + relative) for base in (self.staging, self.target, self.retired)
        )
        if self.fs.exists(current):
            self.fs.mkdirs(old.getParent())
            if not self.fs.rename(current, old):
                raise OSError(
                    f"could not move the previous version of {self.target}{relative} aside"
                )
        if self.fs.exists(new):
            self.fs.mkdirs(current.getParent())
            if not self.fs.rename(new, current):
                raise OSError(f"could not move the new {self.target}{relative} into place")

    def children(self, uri: str) -> set[str]:
        path = self.path(uri)
        if not self.fs.exists(path):
            return set()
        return {status.getPath().getName() for status in self.fs.listStatus(path)}

    def clean_up(self) -> None:
        for leftover in (self.staging, self.retired):
            self.fs.delete(self.path(leftover), True)


def publish_parquet(df: DataFrame, lake: str, spec: TableSpec) -> str:
    """Writes ``df`` as the new version of ``spec``'s whole table; returns its location."""
    publisher = _Publisher(df.sparkSession, lake, spec)
    df.write.mode("errorifexists").parquet(spark_uri(publisher.staging))
    publisher.replace()
    publisher.clean_up()
    return publisher.target


def publish_partitions(
    df: DataFrame, lake: str, spec: TableSpec, column: str, values: list[str]
) -> list[str]:
    """Replaces exactly the partitions ``column=value`` for ``values`` with ``df``'s rows
    (which must all fall in ``values``); other partitions are untouched. A value with no rows
    loses its folder. Returns the values that now hold data."""
    publisher = _Publisher(df.sparkSession, lake, spec)
    df.write.mode("errorifexists").partitionBy(column).parquet(spark_uri(publisher.staging))
    folders = {f"{column}={value}" for value in values}
    produced = publisher.children(publisher.staging) - {"_SUCCESS"}
    if produced - folders:
        publisher.clean_up()
        raise ValueError(
            f"{spec.name}: rows outside the partitions being written ({sorted(produced - folders)})"
        )
    written = produced & folders
    stale = publisher.children(publisher.target) & folders
    for folder in sorted(written | stale):
        publisher.replace(folder)
    publisher.clean_up()
    return sorted(folder.split("=", 1)[1] for folder in written)


def hive_type(data_type_simple_string: str) -> str:
    """Spark's simple type names are Hive's, except for a few spellings."""
    return {"integer": "int", "long": "bigint", "short": "smallint", "byte": "tinyint"}.get(
        data_type_simple_string, data_type_simple_string
    )
