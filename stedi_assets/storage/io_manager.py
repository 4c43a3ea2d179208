"""The IO manager: stores every asset's DataFrame in the lake and registers it in the catalog.

Landing assets are not rewritten (devices own those files): their output is registered from
the DDL and described. Every other asset is published as Parquet. Either way the
materialization carries Dagster's standard table metadata.
"""

from typing import Any

from dagster import (
    ConfigurableIOManager,
    InputContext,
    MetadataValue,
    OutputContext,
    ResourceDependency,
    TableColumn,
    TableSchema,
)
from pyspark.sql import DataFrame

from stedi_assets.partitions import DAY_COLUMN
from stedi_assets.pii import mask_pii
from stedi_assets.storage.catalog import CatalogTable
from stedi_assets.storage.lake import Lake
from stedi_assets.storage.layout import table_spec

PREVIEW_ROWS = 5


class LakeIOManager(ConfigurableIOManager):
    lake: ResourceDependency[Lake]

    def handle_output(self, context: OutputContext, obj: DataFrame) -> None:
        table = context.asset_key.path[-1]
        if table_spec(table).is_landing:
            entry = self.lake.register_landing(table)
        elif context.has_asset_partitions:
            entry = self.lake.write_table(
                table, obj, partition_column=DAY_COLUMN, partitions=context.asset_partition_keys
            )
        else:
            entry = self.lake.write_table(table, obj)
        # Describe what was stored, not the lazy plan that produced it. A landing asset counts
        # its own lines while it reads them; counting again would parse all its JSON again.
        stored = self.lake.read_table(table)
        metadata = table_metadata(
            entry, stored, self.lake.catalog.database, count=not table_spec(table).is_landing
        )
        if context.has_asset_partitions:
            days = context.asset_partition_key_range
            written = self.lake.read_table(table, partitions=(days.start, days.end))
            metadata["dagster/partition_row_count"] = MetadataValue.int(written.count())
        context.add_output_metadata(metadata)

    def load_input(self, context: InputContext) -> DataFrame:
        table = context.upstream_output.asset_key.path[-1]
        if context.has_asset_partitions:
            days = context.asset_partition_key_range
            return self.lake.read_table(table, partitions=(days.start, days.end))
        return self.lake.read_table(table)


def table_metadata(
    entry: CatalogTable, stored: DataFrame, database: str, count: bool = True
) -> dict[str, Any]:
    """Dagster's standard ``dagster/*`` table metadata plus a PII-masked preview."""
    all_columns = (*entry.columns, *entry.partition_keys)
    columns = [TableColumn(name=c.name, type=c.type) for c in all_columns]
    visible = stored.select([c.name for c in all_columns])
    return {
        **({"dagster/row_count": MetadataValue.int(stored.count())} if count else {}),
        "dagster/column_schema": TableSchema(columns=columns),
        "dagster/uri": MetadataValue.text(entry.location),
        "dagster/table_name": MetadataValue.text(f"{database}.{entry.name}"),
        "preview": MetadataValue.md(_markdown(mask_pii(visible).limit(PREVIEW_ROWS))),
    }


def _markdown(df: DataFrame) -> str:
    rows = df.collect()  # PREVIEW_ROWS rows at most
    header = "| " + " | ".join(df.columns) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
    return "\n".join([header, rule, *body])
