"""Upgrading a local lake written before tables were Iceberg tables (plain Parquet folders
named in a hand-written SQLite catalog): the first run makes each such table an Iceberg table
that references its existing files, so nothing is lost and the table's history starts there.

The legacy catalog's ``tables`` and ``partitions`` rows name each table, its location and its
partition column. Its Parquet files move below ``<location>/data/`` (where Iceberg keeps data,
apart from ``metadata/``), Iceberg's ``add_files`` registers them in a first snapshot, and the
legacy rows are dropped. (An s3:// lake's legacy Glue tables are not upgraded in place: the
first run says so; see the README.)
"""

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from stedi_assets.storage import iceberg


def _legacy_tables(sqlite_path: Path) -> list[tuple[str, str, str | None]]:
    """(name, location, partition column) of the legacy catalog's Parquet tables."""
    if not sqlite_path.is_file():
        return []
    with closing(sqlite3.connect(sqlite_path)) as conn:
        found = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'tables'"
        ).fetchone()
        if not found:
            return []
        rows = conn.execute(
            "SELECT name, location, partition_keys FROM tables WHERE format = 'parquet'"
        ).fetchall()
    tables = []
    for name, location, partition_keys in rows:
        keys = json.loads(partition_keys)
        tables.append((name, location, keys[0][0] if keys else None))
    return tables


def _move_into_data(folder: Path) -> bool:
    """Moves the table's Parquet files (and day folders) below ``data/``; False when the
    folder holds none."""
    entries = [p for p in folder.iterdir() if p.name not in ("data", "metadata")]
    parquet = [p for p in entries if p.suffix == ".parquet" or (p.is_dir() and "=" in p.name)]
    if not parquet:
        return False
    (folder / "data").mkdir(exist_ok=True)
    for path in parquet:
        path.rename(folder / "data" / path.name)
    for leftover in entries:  # Spark's _SUCCESS and .crc files
        if leftover.exists() and leftover.is_file():
            leftover.unlink()
    return True


def upgrade_legacy_tables(
    spark: SparkSession, catalog: iceberg.CatalogConfig, log: Any
) -> list[str]:
    """Upgrades every legacy table of a local lake; returns their names."""
    if catalog.sqlite_path is None:
        return []
    sqlite_path = Path(catalog.sqlite_path)
    legacy_tables = _legacy_tables(sqlite_path)
    if not legacy_tables:
        return []
    upgraded = []
    for name, location, partition_column in legacy_tables:
        folder = Path(location.removeprefix("file://"))
        if iceberg.table_exists(spark, catalog, name) or not folder.is_dir():
            continue
        if not _move_into_data(folder):
            continue
        data = f"{str(folder).rstrip('/')}/data"
        legacy = spark.read.parquet(data)
        iceberg.create_table(spark, catalog, name, legacy.schema, str(folder), partition_column)
        spark.sql(
            f"CALL {catalog.spark_catalog}.system.add_files("
            f"table => '{catalog.database}.{name}', source_table => '`parquet`.`{data}`')"
        )
        log.info(f"upgraded {name} to an Iceberg table referencing its {legacy.count()} rows")
        upgraded.append(name)
    with closing(sqlite3.connect(sqlite_path)) as conn, conn:
        conn.execute("DROP TABLE IF EXISTS partitions")
        conn.execute("DROP TABLE IF EXISTS tables")
    return upgraded
