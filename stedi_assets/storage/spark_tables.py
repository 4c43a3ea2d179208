"""Reading and writing the lakehouse's Parquet tables with Spark.

Data never passes through the driver: Spark reads and writes the lake directly, and table
replacement is done with Hadoop FileSystem renames, which work for local paths and S3A alike.
"""

from pyspark.sql import DataFrame, SparkSession

from stedi_assets.storage.filesystem import path_exists, spark_uri
from stedi_assets.storage.layout import TableSpec
from stedi_assets.storage.publish import publisher_for


def read_parquet(
    spark: SparkSession, location: str, schema: str, partitioned: bool = False
) -> DataFrame:
    """A Parquet table with ``schema`` (a DDL string; partition folders are discovered). A
    partitioned table that has no data yet has no folder: it reads as an empty table."""
    if partitioned and not path_exists(spark, location):
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).parquet(spark_uri(location))


def publish_parquet(df: DataFrame, lake: str, spec: TableSpec) -> str:
    """Writes ``df`` as the new version of ``spec``'s whole table; returns its location."""
    publisher = publisher_for(df.sparkSession, lake, spec)
    df.write.mode("errorifexists").parquet(spark_uri(publisher.staging))
    with publisher.swapping():
        publisher.replace()
    publisher.clean_up()
    return publisher.target


def publish_partitions(
    df: DataFrame, lake: str, spec: TableSpec, column: str, values: list[str]
) -> list[str]:
    """Replaces exactly the partitions ``column=value`` for ``values`` with ``df``'s rows
    (which must all fall in ``values``); other partitions are untouched. A value with no rows
    loses its folder. Returns the values that now hold data."""
    publisher = publisher_for(df.sparkSession, lake, spec)
    df.write.mode("errorifexists").partitionBy(column).parquet(spark_uri(publisher.staging))
    folders = {f"{column}={value}" for value in values}
    # Spark's markers and checksums (_SUCCESS, .crc) are not partitions.
    produced = {
        name for name in publisher.children(publisher.staging) if not name.startswith(("_", "."))
    }
    if produced - folders:
        publisher.clean_up()
        raise ValueError(
            f"{spec.name}: rows outside the partitions being written ({sorted(produced - folders)})"
        )
    written = produced & folders
    stale = publisher.children(publisher.target) & folders
    with publisher.swapping():
        for folder in sorted(written | stale):
            publisher.replace(folder)
    publisher.clean_up()
    return sorted(folder.split("=", 1)[1] for folder in written)


def hive_type(data_type_simple_string: str) -> str:
    """Spark's simple type names are Hive's, except for a few spellings."""
    return {"integer": "int", "long": "bigint", "short": "smallint", "byte": "tinyint"}.get(
        data_type_simple_string, data_type_simple_string
    )
