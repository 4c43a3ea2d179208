"""Reading and writing lakehouse tables with Spark: landing JSON in, Parquet out.

Data never passes through the driver: Spark reads and writes the lake directly, and table
replacement is done with Hadoop FileSystem renames, which work for local paths and S3A alike.
"""

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from stedi_assets.storage.ddl import landing_ddl
from stedi_assets.storage.filesystem import hadoop_path, path_exists, spark_uri
from stedi_assets.storage.layout import TableSpec, landing_day, near_days
from stedi_assets.storage.publish import publisher_for

# Spark puts a line it cannot parse against the DDL schema here (PERMISSIVE mode).
CORRUPT_RECORD = "_corrupt_record"
# The landing file a row was read from, for quarantine and messages.
SOURCE_FILE = "_source_file"


def read_landing(
    spark: SparkSession, lake: str, spec: TableSpec, days: tuple[str, str] | None = None
) -> DataFrame:
    """The JSON-lines files below the table's landing folder, at any depth, read with the
    schema of its DDL in ``sql/``. Lines that do not fit the schema keep their raw text in
    ``_corrupt_record`` so that a check can count them.

    With ``days=(first, last)`` only the files that may hold readings of those days are read:
    files in day folders from the day before ``first`` to the day after ``last``, and files in
    no day folder. A day's run does not rescan the other days' files."""
    ddl = landing_ddl(spec.name)
    location = spec.location(lake)
    if not path_exists(spark, location):
        raise FileNotFoundError(
            f"no landing data for {spec.name}: {location} does not exist "
            f"(is the lake root {lake!r} right?)"
        )
    schema = ddl.spark_schema().add(CORRUPT_RECORD, "string")
    reader = (
        spark.read.schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
    )
    if days is None:
        df = reader.option("recursiveFileLookup", "true").json(spark_uri(location))
    else:
        paths = _landing_files_near(spark, location, *near_days(*days))
        if not paths:
            return spark.createDataFrame([], schema.add(SOURCE_FILE, "string"))
        df = reader.json(paths)
    return df.withColumn(SOURCE_FILE, F.col("_metadata.file_path"))


def _landing_files_near(spark: SparkSession, location: str, first: str, last: str) -> list[str]:
    fs, root = hadoop_path(spark, location)
    prefix = root.toUri().getPath().rstrip("/") + "/"
    files = fs.listFiles(root, True)
    paths = []
    while files.hasNext():
        path = files.next().getPath()
        below = path.toUri().getPath().removeprefix(prefix)
        if any(part.startswith((".", "_")) for part in below.split("/")):
            continue  # Spark's own convention: hidden files are not data
        day = landing_day(below)
        if day is None or first <= day <= last:
            paths.append(path.toString())
    return paths


def read_parquet(spark: SparkSession, location: str, empty_schema: str | None = None) -> DataFrame:
    """A Parquet table (partition folders discovered). A partitioned table that has no data
    yet has no folder: with ``empty_schema`` (a DDL string) that reads as an empty table."""
    if empty_schema is not None and not path_exists(spark, location):
        return spark.createDataFrame([], empty_schema)
    return spark.read.parquet(spark_uri(location))


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
