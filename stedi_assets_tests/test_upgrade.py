"""A lake written before tables were Iceberg tables is upgraded by its first run, its
existing rows kept as each table's first snapshot."""

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from stedi_assets.assets.customer_trusted import build_customer_trusted
from stedi_assets.partitions import utc_day
from stedi_assets.runner import run_lakehouse
from stedi_assets.storage import iceberg
from stedi_assets.storage.landing_reads import read_landing
from stedi_assets.storage.layout import table_spec
from stedi_assets_tests.conftest import lake_catalog, lake_settings
from stedi_assets_tests.rows import DAY, T0, accelerometer


def _legacy_catalog(path: Path, tables: list[tuple[str, str, list[list[str]]]]) -> None:
    """The hand-written SQLite catalog of earlier versions, with ``tables`` rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "CREATE TABLE tables (name TEXT PRIMARY KEY, location TEXT NOT NULL, format TEXT "
            "NOT NULL, columns TEXT NOT NULL, partition_keys TEXT NOT NULL, ddl TEXT)"
        )
        conn.execute(
            "CREATE TABLE partitions (table_name TEXT NOT NULL, partition_values TEXT NOT NULL, "
            "location TEXT NOT NULL)"
        )
        for name, location, keys in tables:
            conn.execute(
                "INSERT INTO tables VALUES (?, ?, 'parquet', '[]', ?, NULL)",
                (name, location, json.dumps(keys)),
            )


def test_a_legacy_parquet_lake_is_upgraded_by_its_first_run_without_losing_rows(
    spark: SparkSession, simulated_lake: Path
) -> None:
    trusted = simulated_lake / "customer" / "trusted"
    accel = simulated_lake / "accelerometer" / "trusted"
    # As earlier versions wrote them: the same columns as now, plain Parquet folders. One
    # consenting customer of the landing data (another would be a withdrawal, and erased).
    landing = read_landing(spark, str(simulated_lake), table_spec("customer_landing"))
    customer = build_customer_trusted(landing).orderBy("email").limit(1).first()
    spark.createDataFrame([customer]).write.parquet(str(trusted))
    readings = accelerometer(
        spark, (customer.email, T0, 0.1, 0.2, 0.3), (customer.email, T0 + DAY, 0.1, 0.2, 0.3)
    ).withColumn("day", utc_day(F.col("timestamp")))
    readings.write.partitionBy("day").parquet(str(accel))
    staging = simulated_lake / "_staging" / "customer" / "trusted"
    staging.mkdir(parents=True)
    (staging / "part-0.parquet").write_bytes(b"an interrupted swap's copy")
    _legacy_catalog(
        simulated_lake / "_catalog" / "catalog.sqlite",
        [
            ("customer_trusted", f"{trusted}/", []),
            ("accelerometer_trusted", f"{accel}/", [["day", "string"]]),
        ],
    )

    assert run_lakehouse(lake_settings(simulated_lake), "privacy").success

    catalog = lake_catalog(simulated_lake)
    catalog.register(spark)
    for table, legacy_rows in (("customer_trusted", 1), ("accelerometer_trusted", 2)):
        first, latest = iceberg.history(spark, catalog, table)  # the upgrade, then the run
        assert first.operation == "append" and first.total_records == legacy_rows, table
        assert latest.total_records > 0
        # The legacy rows are Iceberg's now, readable at that snapshot.
        old = spark.read.option("versionAsOf", str(first.snapshot_id)).table(
            catalog.identifier(table)
        )
        assert old.count() == legacy_rows
    # The legacy files and the old swap folders (copies of tables) are gone.
    assert not list(trusted.glob("*.parquet")) and not list(accel.glob("day=*"))
    assert list((accel / "data").glob("day=*"))
    assert not (simulated_lake / "_staging").exists()
    with closing(sqlite3.connect(simulated_lake / "_catalog" / "catalog.sqlite")) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "tables" not in names and "partitions" not in names


def test_a_quarantine_table_in_the_research_database_moves_to_the_quarantine_database(
    spark: SparkSession, simulated_lake: Path
) -> None:
    # As the previous version kept it: an Iceberg table beside the research tables.
    (simulated_lake / "_catalog").mkdir()
    catalog = lake_catalog(simulated_lake)
    catalog.register(spark)
    location = table_spec("customer_quarantine").location(str(simulated_lake)).rstrip("/")
    old = f"{catalog.spark_catalog}.`stedi`.`customer_quarantine`"
    spark.sql(
        f"CREATE TABLE {old} (source_file string, reason string, record string) USING iceberg "
        f"LOCATION '{location}'"
    )
    spark.sql(f"INSERT INTO {old} VALUES ('f.json', 'a reason', '{{}}')")
    old_snapshot = spark.sql(f"SELECT snapshot_id FROM {old}.snapshots").first().snapshot_id

    assert run_lakehouse(lake_settings(simulated_lake), "privacy").success

    def tables_in(database: str) -> set[str]:
        shown = spark.sql(f"SHOW TABLES IN {catalog.spark_catalog}.{database}").collect()
        return {row.tableName for row in shown}

    research, quarantine = tables_in("stedi"), tables_in("stedi_quarantine")
    assert "customer_quarantine" not in research
    assert quarantine == {
        "customer_quarantine",
        "accelerometer_quarantine",
        "step_trainer_quarantine",
    }
    # Moved, not recreated: its history starts with the earlier version's snapshot.
    first = iceberg.history(spark, catalog, "customer_quarantine")[0]
    assert first.total_records == 1
    assert first.snapshot_id == old_snapshot
