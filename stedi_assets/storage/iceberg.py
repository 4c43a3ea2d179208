"""Iceberg tables through Spark: the catalog of a lake, and the few table operations the
lakehouse needs (create, write a branch, publish a branch, history, rollback, erasure).

The catalog is Iceberg's own: its JDBC catalog on a SQLite file under a local lake, its Glue
catalog with S3FileIO on an ``s3://`` lake.

One process-wide session serves one lake at a time under the catalog name ``lake``
(``lake.stedi.customer_trusted``); a process that moves to another lake re-points it.

Write-audit-publish: a run writes each table to a branch named after the run; the checks read
the branch; publishing fast-forwards ``main`` to the branch (or, when another run published to
the table meanwhile, re-applies the branch's rows on the current ``main``), then drops it.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession

from stedi_assets.storage.layout import (
    CATALOG_NAME,
    QUARANTINE_DATABASE_SUFFIX,
    TABLES,
    table_spec,
)
from stedi_assets.storage.s3 import aws_region, endpoint_url

# Columns that name or reach a person: no min/max bounds of them in manifests, so erasing a
# customer's rows (and expiring the snapshots that held them) leaves no copy in metadata.
IDENTIFIER_COLUMNS = ("email", "user", "serialNumber", "customerName", "phone", "birthDay")
# How long main's history is kept for rollback; erasure cuts it short (see ``erase_history``).
SNAPSHOT_RETENTION = timedelta(days=7)
# What remove_orphan_files may delete: Iceberg refuses files younger than a day (a concurrent
# writer may not have committed them yet). Files of killed runs go after this deadline.
ORPHAN_DEADLINE = timedelta(days=1)
BRANCH_PREFIX = "run_"
# The Spark (and JDBC) catalog name of the lake.

TABLE_PROPERTIES: dict[str, str] = {
    "format-version": "2",  # what Athena engine v3 and Glue 5's Iceberg 1.10 read
    # Deletes rewrite the data files that held the rows, so expiring snapshots erases them.
    "write.delete.mode": "copy-on-write",
    "write.update.mode": "copy-on-write",
    "write.merge.mode": "copy-on-write",
    # Per-day record counts in every commit's summary: per-day metadata without a read-back.
    "write.summary.partition-limit": "10000",
    "history.expire.max-snapshot-age-ms": str(int(SNAPSHOT_RETENTION.total_seconds() * 1000)),
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "10",
    # A column added to a rule (or a table of an older version) evolves the table's schema.
    "write.spark.accept-any-schema": "true",
}


# Options of every write, whatever version created the table (``make bench-write-path``):
# - no shuffle before the write: each task sorts its own rows by day, as Spark's Parquet writer
#   does, instead of Iceberg's default hash distribution (one more exchange of every row);
# - no fanout writers (Iceberg's default with distribution none), which keep a file open for
#   every day a task holds: after the sort a task has one open file, whatever the days;
# - Snappy, Spark's Parquet default, instead of Iceberg's zstd: faster to write and to read,
#   for somewhat larger files.
WRITE_OPTIONS = {
    "distribution-mode": "none",
    "fanout-enabled": "false",
    "compression-codec": "snappy",
}


def table_properties(column_names: Iterable[str]) -> dict[str, str]:
    """The properties of a table with these columns (Iceberg refuses metrics settings of
    columns a table does not have)."""
    return TABLE_PROPERTIES | {
        f"write.metadata.metrics.column.{c}": "none"
        for c in column_names
        if c in IDENTIFIER_COLUMNS
    }


@dataclass(frozen=True)
class CatalogConfig:
    """Where a lake's Iceberg catalog is: a SQLite file (local) or Glue (``s3://``)."""

    lake_root: str  # absolute local path or s3:// URI, no trailing slash
    database: str
    sqlite_path: str | None = None  # set for a local lake

    @property
    def is_glue(self) -> bool:
        return self.sqlite_path is None

    @property
    def spark_catalog(self) -> str:
        # The JDBC catalog stores this name with every table: one fixed name, so that the
        # lake can move and other engines (pyiceberg's SqlCatalog("lake", …)) find its tables.
        return CATALOG_NAME

    def spark_options(self) -> dict[str, str]:
        prefix = f"spark.sql.catalog.{self.spark_catalog}"
        options = {"": "org.apache.iceberg.spark.SparkCatalog", ".cache-enabled": "false"}
        if self.is_glue:
            options |= {
                ".catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
                ".io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
                ".warehouse": self.lake_root,
                # Glue's optimistic lock: a commit fails if another changed the table meanwhile.
                ".glue.skip-archive": "true",
            }
            region, endpoint = aws_region(), endpoint_url()
            if region:
                options[".client.region"] = region
            if endpoint:  # S3-compatible stores and moto
                options |= {
                    ".glue.endpoint": endpoint,
                    ".s3.endpoint": endpoint,
                    ".s3.path-style-access": "true",
                }
        else:
            options |= {
                ".type": "jdbc",
                ".jdbc-driver": "org.sqlite.JDBC",
                ".uri": f"jdbc:sqlite:{self.sqlite_path}",
                ".warehouse": f"file://{self.lake_root}",
            }
        return {prefix + key: value for key, value in options.items()}

    def register(self, spark: SparkSession) -> None:
        """Points the session's catalog ``lake`` at this lake. Spark instantiates a catalog on
        first use, from the session's configuration, and keeps it: when the session served
        another lake before (the test suite runs many in one JVM), the options are replaced and
        Spark's catalogs reset, so the next statement loads this lake's catalog."""
        wanted = self.spark_options()
        prefix = f"spark.sql.catalog.{self.spark_catalog}"
        current = {key: value for key, value in spark.conf.getAll.items() if key.startswith(prefix)}
        if current != wanted:
            for key in current:
                spark.conf.unset(key)
            for key, value in wanted.items():
                spark.conf.set(key, value)
            spark._jsparkSession.sessionState().catalogManager().reset()
        for database in self.databases:
            spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {self.spark_catalog}.`{database}`")

    @property
    def databases(self) -> tuple[str, str]:
        """The research tables' database and the quarantine's (``layout``)."""
        return self.database, self.database + QUARANTINE_DATABASE_SUFFIX

    def database_of(self, table: str) -> str:
        """The database of a lakehouse table; another (foreign) table is taken to be in the
        research database."""
        spec = TABLES.get(table)
        return spec.database(self.database) if spec else self.database

    def identifier(self, table: str) -> str:
        return f"{self.spark_catalog}.`{self.database_of(table)}`.`{table}`"

    def procedure_argument(self, table: str) -> str:
        """The table as Iceberg's procedures take it (catalog-qualified, so that Iceberg does
        not first look for a catalog named after the database, and warn)."""
        return f"{self.spark_catalog}.{self.database_of(table)}.{table}"


def table_exists(spark: SparkSession, config: CatalogConfig, table: str) -> bool:
    namespace = f"{config.spark_catalog}.`{config.database_of(table)}`"
    return bool(spark.sql(f"SHOW TABLES IN {namespace} LIKE '{table}'").take(1))


def table_names(spark: SparkSession, config: CatalogConfig) -> list[str]:
    """The lakehouse's Iceberg tables in both databases (foreign tables left out)."""
    found: set[str] = set()
    for database in config.databases:
        found |= {
            name
            for name in _names_in(spark, config, database)
            if name in TABLES and config.database_of(name) == database
        }
    return sorted(found)


def _names_in(spark: SparkSession, config: CatalogConfig, database: str) -> list[str]:
    rows = spark.sql(f"SHOW TABLES IN {config.spark_catalog}.`{database}`").collect()
    return [row.tableName for row in rows]


def move_quarantine_tables(spark: SparkSession, config: CatalogConfig) -> list[str]:
    """Moves quarantine tables that an earlier version kept in the research database to the
    quarantine database (a catalog rename: the files stay where they are); returns them."""
    research, _ = config.databases
    misplaced = [
        name
        for name in _names_in(spark, config, research)
        if name in TABLES and table_spec(name).zone == "quarantine"
    ]
    for name in misplaced:
        spark.sql(
            f"ALTER TABLE {config.spark_catalog}.`{research}`.`{name}` "
            # The new name is relative to the table's catalog (Spark does not strip one).
            f"RENAME TO `{config.database_of(name)}`.`{name}`"
        )
    return misplaced


def create_table(
    spark: SparkSession,
    config: CatalogConfig,
    table: str,
    schema: Any,  # StructType
    location: str,
    partition_column: str | None,
) -> None:
    """Creates the Iceberg table at ``location`` unless it exists."""
    columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in schema)
    properties = ", ".join(f"'{k}'='{v}'" for k, v in table_properties(schema.names).items())
    partitioned = f"PARTITIONED BY (`{partition_column}`)" if partition_column else ""
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {config.identifier(table)} ({columns}) USING iceberg "
        f"{partitioned} LOCATION '{location.rstrip('/')}' TBLPROPERTIES ({properties})"
    )


def create_table_as(
    spark: SparkSession,
    config: CatalogConfig,
    table: str,
    rows: DataFrame,
    location: str,
    partition_column: str | None,
) -> None:
    """Creates the Iceberg table at ``location`` holding ``rows``, atomically (Iceberg stages
    the table and commits it with its first snapshot, or not at all)."""
    writer = rows.writeTo(config.identifier(table)).using("iceberg")
    for key, value in WRITE_OPTIONS.items():
        writer = writer.option(key, value)
    writer = writer.tableProperty("location", location.rstrip("/"))
    for key, value in table_properties(rows.columns).items():
        writer = writer.tableProperty(key, value)
    if partition_column:
        writer = writer.partitionedBy(rows[partition_column])
    writer.create()


def _java_table(spark: SparkSession, config: CatalogConfig, table: str) -> Any:
    """Iceberg's Java ``Table``: metadata (refs, snapshots) without a Spark job."""
    jvm = spark.sparkContext._jvm
    name = config.procedure_argument(table)
    return jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, name)


def refs(spark: SparkSession, config: CatalogConfig, table: str) -> dict[str, int]:
    """Branch name -> head snapshot id."""
    found = _java_table(spark, config, table).refs()
    return {
        str(name): int(ref.snapshotId())
        for name, ref in ((n, found.get(n)) for n in found.keySet().toArray())
        if ref.isBranch()
    }


def main_snapshot(spark: SparkSession, config: CatalogConfig, table: str) -> int | None:
    current = _java_table(spark, config, table).currentSnapshot()
    return None if current is None else int(current.snapshotId())


def _snapshot_of(java_snapshot: Any) -> "Snapshot":
    summary = java_snapshot.summary()
    return Snapshot(
        snapshot_id=int(java_snapshot.snapshotId()),
        committed_at=datetime.fromtimestamp(java_snapshot.timestampMillis() / 1000, UTC),
        operation=str(java_snapshot.operation()),
        summary={str(k): str(summary.get(k)) for k in summary.keySet().toArray()},
    )


def create_branch(
    spark: SparkSession, config: CatalogConfig, table: str, branch: str, at: int | None
) -> None:
    """Creates ``branch`` at snapshot ``at`` (main's head when the run first touched the
    table), or empty when the table has no snapshot yet."""
    as_of = f" AS OF VERSION {at}" if at is not None else ""
    spark.sql(f"ALTER TABLE {config.identifier(table)} CREATE BRANCH `{branch}`{as_of}")


def drop_branch(spark: SparkSession, config: CatalogConfig, table: str, branch: str) -> None:
    spark.sql(f"ALTER TABLE {config.identifier(table)} DROP BRANCH IF EXISTS `{branch}`")


def branch_identifier(config: CatalogConfig, table: str, branch: str) -> str:
    return f"{config.identifier(table)}.`branch_{branch}`"


def write(df: DataFrame, identifier: str, replaced: Column, run_id: str | None) -> None:
    """Replaces the rows of ``identifier`` (a table or a branch) matching ``replaced`` with
    ``df``, in one commit whose summary names the run (``stedi history``)."""
    writer = df.writeTo(identifier).option("mergeSchema", "true")
    for key, value in WRITE_OPTIONS.items():
        writer = writer.option(key, value)
    if run_id is not None:
        writer = writer.option("snapshot-property.stedi.run-id", run_id)
    writer.overwrite(replaced)


def read(
    spark: SparkSession,
    config: CatalogConfig,
    table: str,
    *,
    branch: str | None = None,
    snapshot: int | None = None,
) -> DataFrame:
    reader = spark.read
    if branch is not None:
        reader = reader.option("branch", branch)
    elif snapshot is not None:
        reader = reader.option("versionAsOf", str(snapshot))
    return reader.table(config.identifier(table))


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: int
    committed_at: datetime
    operation: str
    summary: Mapping[str, str]

    @property
    def total_records(self) -> int:
        return int(self.summary.get("total-records", 0))

    @property
    def run_id(self) -> str | None:
        return self.summary.get("stedi.run-id")

    def added_records_per_partition(self) -> dict[str, int] | None:
        """``{"day=2022-06-18": rows, …}`` of the partitions this commit wrote, when the
        summary carries per-partition counts (``write.summary.partition-limit``)."""
        if self.summary.get("partition-summaries-included") != "true":
            return None
        counts = {}
        for key, value in self.summary.items():
            if key.startswith("partitions."):
                fields = dict(item.split("=", 1) for item in value.split(","))
                counts[key.removeprefix("partitions.")] = int(fields.get("added-records", 0))
        return counts


def snapshot(spark: SparkSession, config: CatalogConfig, table: str, snapshot_id: int) -> Snapshot:
    found = _java_table(spark, config, table).snapshot(snapshot_id)
    if found is None:
        raise LookupError(f"{table} has no snapshot {snapshot_id}")
    return _snapshot_of(found)


def history(spark: SparkSession, config: CatalogConfig, table: str) -> list[Snapshot]:
    """Main's snapshots, oldest first: the ones main has pointed at (rollback points)."""
    java_table = _java_table(spark, config, table)
    entries = java_table.history().toArray()
    found = (java_table.snapshot(entry.snapshotId()) for entry in entries)
    return [_snapshot_of(s) for s in found if s is not None]


def oldest_snapshot_time(spark: SparkSession, config: CatalogConfig, table: str) -> datetime | None:
    snapshots = list(_java_table(spark, config, table).snapshots())
    if not snapshots:
        return None
    return datetime.fromtimestamp(min(s.timestampMillis() for s in snapshots) / 1000, UTC)


def fast_forward(spark: SparkSession, config: CatalogConfig, table: str, branch: str) -> bool:
    """Moves main to ``branch``'s head; False when main is no longer its ancestor (another run
    published meanwhile)."""
    try:
        spark.sql(
            f"CALL {config.spark_catalog}.system.fast_forward("
            f"table => '{config.procedure_argument(table)}', branch => 'main', to => '{branch}')"
        )
    except Exception as error:  # IllegalArgumentException through py4j
        if "is not an ancestor" in str(error):
            return False
        raise
    return True


def rollback(spark: SparkSession, config: CatalogConfig, table: str, snapshot_id: int) -> None:
    spark.sql(
        f"CALL {config.spark_catalog}.system.rollback_to_snapshot("
        f"'{config.procedure_argument(table)}', {snapshot_id})"
    )


def expire_snapshots(
    spark: SparkSession, config: CatalogConfig, table: str, older_than: datetime, retain_last: int
) -> None:
    """Drops the snapshots older than ``older_than`` (keeping main's last ``retain_last``) and
    deletes the data and metadata files no remaining snapshot references."""
    stamp = older_than.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    spark.sql(
        f"CALL {config.spark_catalog}.system.expire_snapshots("
        f"table => '{config.procedure_argument(table)}', older_than => TIMESTAMP '{stamp}', "
        f"retain_last => {retain_last})"
    )


def remove_orphan_files(spark: SparkSession, config: CatalogConfig, table: str) -> None:
    """Deletes files below the table that no snapshot references and that are older than the
    orphan deadline (files of killed runs)."""
    cutoff = datetime.now(UTC) - ORPHAN_DEADLINE
    stamp = cutoff.strftime("%Y-%m-%d %H:%M:%S")
    spark.sql(
        f"CALL {config.spark_catalog}.system.remove_orphan_files("
        f"table => '{config.procedure_argument(table)}', older_than => TIMESTAMP '{stamp}', "
        # List through the table's FileIO (S3FileIO on S3), not Hadoop's s3:// file system.
        "prefix_listing => true)"
    )


def run_branches(branches: Iterable[str]) -> list[str]:
    return [b for b in branches if b.startswith(BRANCH_PREFIX)]
