"""Upgrading a lake written before tables were Iceberg tables: plain Parquet folders at each
table's layout location, named in a hand-written SQLite catalog (local lakes) or in Glue tables
of the same names (s3:// lakes).

A run that finds a table with no Iceberg table but with such Parquet files makes it one: the
legacy catalog entry goes, the rows are copied into a new Iceberg table at the same location in
one atomic create (its first snapshot, so ``stedi history`` starts there), and the legacy files
are deleted. The swap folders of those versions (``_staging``, ``_retired``), which held extra
copies of tables, are deleted first.

Every step can be interrupted: the legacy files are what marks a table for upgrade, and they go
only after the Iceberg table holds their rows (a run killed in between leaves them as orphan
files, which the next erasure or ``remove_orphan_files`` deletes). Nothing is lost: the tables
hold only rows computed from landing, which stays untouched.
"""

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from stedi_assets.storage import iceberg
from stedi_assets.storage.filesystem import hadoop_path, spark_uri
from stedi_assets.storage.layout import TABLES

# Folders of the hand-written swap of earlier versions: copies of tables, never read.
LEGACY_FOLDERS = ("_staging", "_retired")
# Iceberg's own folders below a table's location.
ICEBERG_FOLDERS = ("data", "metadata")


def _legacy_entries(spark: SparkSession, location: str) -> tuple[list[Any], list[str]]:
    """The Parquet files and ``day=…`` folders at the top of a table's location (Hadoop
    ``FileStatus``es), and Spark's marker files there (``_SUCCESS``, ``.crc``); Iceberg's
    folders aside."""
    fs, path = hadoop_path(spark, location)
    if not fs.exists(path):
        return [], []
    entries, markers = [], []
    for status in fs.listStatus(path):
        name = status.getPath().getName()
        if name in ICEBERG_FOLDERS:
            continue
        if name.endswith(".parquet") or (status.isDirectory() and name.startswith("day=")):
            entries.append(status)
        elif status.isFile() and (name.startswith(("_", ".")) or name.endswith(".crc")):
            markers.append(str(status.getPath().toString()))
    return entries, markers


def _delete(spark: SparkSession, uri: str) -> None:
    fs, path = hadoop_path(spark, uri)
    if fs.exists(path):
        fs.delete(path, True)


def upgrade_legacy_tables(
    spark: SparkSession,
    catalog: iceberg.CatalogConfig,
    forget_legacy_table: Callable[[str], None],
    log: Any,
) -> list[str]:
    """Upgrades every legacy table of the lake; returns their names. ``forget_legacy_table``
    removes a legacy catalog entry (a Glue table of the name that is not Iceberg's)."""
    existing = set(iceberg.table_names(spark, catalog))
    missing = [
        spec for spec in TABLES.values() if not spec.is_landing and spec.name not in existing
    ]
    if not missing:
        return []  # every run after the first: no listing at all
    for folder in LEGACY_FOLDERS:
        _delete(spark, f"{catalog.lake_root}/{folder}")
    upgraded = []
    for spec in missing:
        location = spec.location(catalog.lake_root).rstrip("/")
        entries, markers = _legacy_entries(spark, location)
        if not entries:
            continue
        forget_legacy_table(spec.name)
        paths = [str(status.getPath().toString()) for status in entries]
        legacy = spark.read.option("basePath", spark_uri(location)).parquet(*paths)
        partition_column = None
        if any(status.isDirectory() for status in entries):
            partition_column = "day"
            # Spark reads day=2022-06-18 folders as dates; the tables keep days as strings.
            legacy = legacy.withColumn("day", F.date_format("day", "yyyy-MM-dd"))
        iceberg.create_table_as(spark, catalog, spec.name, legacy, location, partition_column)
        for path in [*paths, *markers]:
            _delete(spark, path)
        rows = iceberg.snapshot(
            spark, catalog, spec.name, iceberg.main_snapshot(spark, catalog, spec.name)
        ).total_records
        log.info(f"upgraded {spec.name} to an Iceberg table holding its {rows} legacy rows")
        upgraded.append(spec.name)
    return upgraded


def forget_legacy_sqlite_catalog(sqlite_path: str) -> Callable[[str], None]:
    """The local lake's legacy catalog: the ``tables`` and ``partitions`` tables of earlier
    versions in the catalog file (Iceberg's JDBC catalog keeps its own tables beside them)."""

    def forget(_table: str) -> None:
        if not Path(sqlite_path).is_file():
            return
        with closing(sqlite3.connect(sqlite_path)) as conn, conn:
            conn.execute("DROP TABLE IF EXISTS partitions")
            conn.execute("DROP TABLE IF EXISTS tables")

    return forget
