"""The lake: one root folder or S3 prefix, the Spark session that reads and writes it, and the
catalog that names its tables. The facade assets and the IO manager use for storage."""

from dagster import ConfigurableResource, ResourceDependency
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame, SparkSession

from stedi_assets.storage.catalog import CatalogColumn, CatalogResource, CatalogTable
from stedi_assets.storage.ddl import landing_ddl
from stedi_assets.storage.layout import TableSpec, table_spec
from stedi_assets.storage.spark_tables import (
    hive_type,
    publish_parquet,
    read_landing,
    read_parquet,
)


class Lake(ConfigurableResource):
    """Where the lakehouse lives: ``root`` is a local path or an ``s3://`` URI."""

    root: str
    spark: ResourceDependency[PySparkResource]
    catalog: ResourceDependency[CatalogResource]

    @property
    def spark_session(self) -> SparkSession:
        return self.spark.spark_session

    def location(self, table: str) -> str:
        return table_spec(table).location(self.root)

    def read_landing(self, table: str) -> DataFrame:
        """The landing JSON of ``table`` as a DataFrame with the DDL's schema."""
        return read_landing(self.spark_session, self.root, _landing_spec(table))

    def read_table(self, table: str) -> DataFrame:
        spec = table_spec(table)
        if spec.is_landing:
            return self.read_landing(table)
        return read_parquet(self.spark_session, spec.location(self.root))

    def write_table(self, table: str, df: DataFrame) -> CatalogTable:
        """Publishes ``df`` as ``table`` and registers it in the catalog."""
        spec = table_spec(table)
        if spec.is_landing:
            raise ValueError(
                f"{table} is a landing table: devices write it, the lakehouse reads it"
            )
        location = publish_parquet(df, self.root, spec)
        entry = CatalogTable(
            name=table,
            location=location,
            format="parquet",
            columns=tuple(
                CatalogColumn(f.name, hive_type(f.dataType.simpleString())) for f in df.schema
            ),
        )
        self.catalog.upsert_table(entry)
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
