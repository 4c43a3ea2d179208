"""The lake: one root folder or S3 prefix, the Spark session that reads and writes it, and the
catalog that names its tables. The facade assets and the IO manager use for storage."""

from dagster import ConfigurableResource, InitResourceContext, ResourceDependency
from dagster_pyspark import PySparkResource
from pydantic import PrivateAttr
from pyspark.sql import DataFrame, SparkSession

from stedi_assets.storage.catalog import (
    CatalogColumn,
    CatalogPartition,
    CatalogResource,
    CatalogTable,
)
from stedi_assets.storage.ddl import landing_ddl
from stedi_assets.storage.filesystem import is_local
from stedi_assets.storage.landing_reads import read_landing, release_parsed_landing
from stedi_assets.storage.layout import TableSpec, table_spec
from stedi_assets.storage.publish import acquire_lake, release_lake
from stedi_assets.storage.spark_tables import (
    hive_type,
    publish_parquet,
    publish_partitions,
    read_parquet,
)


class Lake(ConfigurableResource):
    """Where the lakehouse lives: ``root`` is a local path or an ``s3://`` URI."""

    root: str
    spark: ResourceDependency[PySparkResource]
    catalog: ResourceDependency[CatalogResource]
    # A run holds the lake for its duration (local lakes): Spark reads files lazily, so a table
    # replaced by another run mid-read would fail this one. Queries only read and do not wait.
    exclusive: bool = True
    _holds_lock: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self.exclusive and is_local(self.root):
            acquire_lake(self.root, context.log)
            self._holds_lock = True

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self.exclusive:
            # A run's end: the landing JSON it parsed (kept for its steps) is freed.
            release_parsed_landing()
        if self._holds_lock:
            release_lake(self.root)
            self._holds_lock = False

    @property
    def spark_session(self) -> SparkSession:
        return self.spark.spark_session

    def read_landing(self, table: str, days: tuple[str, str] | None = None) -> DataFrame:
        """The landing JSON of ``table`` as a DataFrame with the DDL's schema; with
        ``days=(first, last)``, only the files that may hold readings of those days."""
        return read_landing(self.spark_session, self.root, _landing_spec(table), days)

    def read_table(self, table: str, partitions: tuple[str, str] | None = None) -> DataFrame:
        """A table; for a partitioned one, only partitions ``first <= value <= last`` when
        ``partitions=(first, last)`` (Spark prunes the other folders unread)."""
        spec = table_spec(table)
        if spec.is_landing:
            return self.read_landing(table)
        entry = self.catalog.get_table(table)
        if entry is None:
            raise FileNotFoundError(
                f"{table} has not been materialized in {self.root} yet: run every table first "
                "(`stedi run` without --days, or the whole job)"
            )
        # The catalog's schema, not one inferred from Parquet footers (a Spark job per read).
        schema = ", ".join(f"`{c.name}` {c.type}" for c in (*entry.columns, *entry.partition_keys))
        # A partitioned table exists in the catalog before any partition holds data.
        partitioned = bool(entry.partition_keys)
        df = read_parquet(self.spark_session, spec.location(self.root), schema, partitioned)
        if partitions is not None and partitioned:
            key = entry.partition_keys[0].name
            df = df.where(df[key].between(*partitions))
        return df

    def write_table(
        self,
        table: str,
        df: DataFrame,
        partition_column: str | None = None,
        partitions: list[str] | None = None,
    ) -> CatalogTable:
        """Publishes ``df`` as ``table`` (or as exactly ``partitions`` of it, by
        ``partition_column``) and registers it, and its partitions, in the catalog."""
        spec = table_spec(table)
        if spec.is_landing:
            raise ValueError(
                f"{table} is a landing table: devices write it, the lakehouse reads it"
            )
        columns = tuple(
            CatalogColumn(f.name, hive_type(f.dataType.simpleString()))
            for f in df.schema
            if f.name != partition_column
        )
        if partition_column is None:
            location = publish_parquet(df, self.root, spec)
            entry = CatalogTable(table, location, "parquet", columns)
            self.catalog.upsert_table(entry)
            return entry
        if partitions is None:
            raise ValueError(f"{table}: a partitioned write names its partitions")
        entry = CatalogTable(
            table,
            spec.location(self.root),
            "parquet",
            columns,
            partition_keys=(CatalogColumn(partition_column, "string"),),
        )
        self.catalog.upsert_table(entry)
        written = publish_partitions(df, self.root, spec, partition_column, partitions)
        self.catalog.upsert_partitions(
            table,
            [
                CatalogPartition((value,), f"{entry.location}{partition_column}={value}/")
                for value in written
            ],
        )
        return entry

    def register_landing(self, table: str) -> CatalogTable:
        """Registers a landing table in the catalog from its DDL in ``sql/``."""
        ddl = landing_ddl(_landing_spec(table).name)
        entry = CatalogTable(
            name=table,
            location=ddl.location(self.root),
            format="json",
            columns=tuple(CatalogColumn(c.name, c.hive_type) for c in ddl.columns),
            ddl=ddl.text.replace("${lake}", self.root.rstrip("/")),
        )
        self.catalog.upsert_table(entry)
        return entry


def _landing_spec(table: str) -> TableSpec:
    spec = table_spec(table)
    if not spec.is_landing:
        raise ValueError(f"{table} is not a landing table")
    return spec
