"""The IO manager: the only door through which assets read and write tables.

Landing assets are not rewritten (devices own those files): reading one gives its JSON with the
DDL's schema, only the files of the days a partitioned run covers. Every other asset is written
to its Iceberg table on the run's branch (write-audit-publish; ``storage/lake.py``), and read
back from there by the run's later steps and checks. A day-partitioned asset declares its
partition column in its metadata (``PARTITION_COLUMN``); the IO manager writes and reads exactly
the run's days of it. Each materialization carries Dagster's standard table metadata, taken
from the Iceberg commit rather than from a read-back.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dagster import (
    ConfigurableIOManager,
    InputContext,
    MetadataValue,
    OutputContext,
    ResourceDependency,
    StepExecutionContext,
    TableColumn,
    TableSchema,
)
from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

from stedi_assets.pii import mask_pii
from stedi_assets.storage.ddl import landing_ddl
from stedi_assets.storage.iceberg import Snapshot
from stedi_assets.storage.lake import Days, Lake
from stedi_assets.storage.landing_reads import FILE_PROBLEM
from stedi_assets.storage.layout import LANDING_TABLES, table_spec

PREVIEW_ROWS = 5
# The whole table's rows, on every materialization (a day's ``dagster/row_count`` is the day's).
TABLE_ROW_COUNT = "table_row_count"
# Asset metadata naming the column a day-partitioned asset is partitioned by.
PARTITION_COLUMN = "stedi/partition_column"
# Asset metadata describing the columns an asset derives (name -> text); the columns taken from
# landing are described by their COMMENT in sql/.
COLUMN_DESCRIPTIONS = "stedi/column_descriptions"
# Columns described as epoch milliseconds are shown in previews with their UTC time beside.
_EPOCH_MS = "epoch milliseconds"


class LakeIOManager(ConfigurableIOManager):
    lake: ResourceDependency[Lake]

    def handle_output(self, context: OutputContext, obj: DataFrame) -> None:
        table = context.asset_key.path[-1]
        if table_spec(table).is_landing:
            # Devices own landing: nothing is written, its files are described. Counting parses
            # them, and the parsed rows stay for the run's later reads (storage/landing_reads).
            self.lake.register_landing(table)
            skipped = self.lake.skipped_landing_files(table)
            for path, reason in skipped:
                context.log.warning(f"{table}: not read: {path}: {reason}")
            landing_columns = landing_ddl(table).columns
            context.add_output_metadata(
                {
                    "dagster/column_schema": TableSchema(
                        columns=[
                            TableColumn(name=c.name, type=c.hive_type, description=c.comment)
                            for c in landing_columns
                        ]
                    ),
                    "dagster/row_count": MetadataValue.int(
                        self.lake.read_landing(table).where(F.col(FILE_PROBLEM).isNull()).count()
                    ),
                    "dagster/uri": MetadataValue.text(self.lake.location(table)),
                    "dagster/table_name": MetadataValue.text(self.lake.table_name(table)),
                    "skipped_files": MetadataValue.int(len(skipped)),
                    "skipped": MetadataValue.md(
                        "\n".join(f"- `{path}`: {reason}" for path, reason in skipped[:20])
                        or "none"
                    ),
                }
            )
            return
        column = context.definition_metadata.get(PARTITION_COLUMN)
        days = None
        if column and context.has_asset_partitions:
            key_range = context.asset_partition_key_range
            days = Days(column, key_range.start, key_range.end)
        snapshot = self.lake.write_table(table, obj, days)
        written = self.lake.read_table(table)
        descriptions = column_descriptions(table, context.definition_metadata)
        context.add_output_metadata(self._metadata(table, written, snapshot, descriptions))
        if days is not None:
            # Each day's materialization carries that day's count and rows, over the run's.
            self._add_day_metadata(context, written, snapshot, days, descriptions)

    def load_input(self, context: InputContext) -> DataFrame:
        table = context.upstream_output.asset_key.path[-1]
        step = context.step_context
        run_days = None
        if step.has_partitions and step.has_partition_key_range and not _reads_every_day(step):
            run_days = step.partition_key_range
        if table_spec(table).is_landing:
            # Only the files that may hold the run's days (all of them in an all-days run).
            dated = run_days is not None and table_spec(table).is_dated_landing
            days = (run_days.start, run_days.end) if dated else None
            return self.lake.read_landing(table, days=days)
        # The run's days of a day-partitioned table; all of it in a run without days (a check
        # executed alone) and for an unpartitioned asset.
        column = context.upstream_output.definition_metadata.get(PARTITION_COLUMN)
        if column and run_days is not None:
            return self.lake.read_table(table, Days(column, run_days.start, run_days.end))
        return self.lake.read_table(table)

    def _add_day_metadata(
        self,
        context: OutputContext,
        written: DataFrame,
        snapshot: Snapshot,
        days: Days,
        descriptions: dict[str, str],
    ) -> None:
        rows_per_day = _rows_per_day(snapshot, days, written)
        previews = _day_previews(written, days, rows_per_day)
        for day in context.asset_partition_keys:
            rows = rows_per_day.get(day, 0)
            context.step_context.add_asset_metadata(
                {
                    "dagster/row_count": MetadataValue.int(rows),
                    "dagster/partition_row_count": MetadataValue.int(rows),
                    "preview": MetadataValue.md(
                        _markdown(written.columns, previews.get(day, []), descriptions)
                    ),
                },
                asset_key=context.asset_key,
                partition_key=day,
            )

    def _metadata(
        self, table: str, written: DataFrame, snapshot: Snapshot, descriptions: dict[str, str]
    ) -> dict[str, Any]:
        """Dagster's standard ``dagster/*`` table metadata, the snapshot, and a PII-masked
        preview."""
        columns = [
            TableColumn(
                name=f.name, type=f.dataType.simpleString(), description=descriptions.get(f.name)
            )
            for f in written.schema
        ]
        preview = mask_pii(written).limit(PREVIEW_ROWS)
        return {
            # A day's materialization overrides it with the day's count; the table's stays in
            # TABLE_ROW_COUNT.
            "dagster/row_count": MetadataValue.int(snapshot.total_records),
            TABLE_ROW_COUNT: MetadataValue.int(snapshot.total_records),
            "dagster/column_schema": TableSchema(columns=columns),
            "dagster/uri": MetadataValue.text(self.lake.location(table)),
            "dagster/table_name": MetadataValue.text(self.lake.table_name(table)),
            "snapshot_id": MetadataValue.text(str(snapshot.snapshot_id)),
            "published": MetadataValue.bool(False),
            "branch": MetadataValue.text(self.lake.branch),
            "preview": MetadataValue.md(
                _markdown(preview.columns, preview.collect(), descriptions)  # 5 rows at most
            ),
        }


def _reads_every_day(step: StepExecutionContext) -> bool:
    """Whether the step computes an unpartitioned asset: it is built from every day of its
    inputs, whatever days the run covers (checks read only the run's days, like their assets)."""
    node = step.assets_def
    return node is not None and bool(node.keys) and node.partitions_def is None


def _rows_per_day(snapshot: Snapshot, days: Days, written: DataFrame) -> dict[str, int]:
    """The rows now in each of ``days``: the commit replaced those days whole, so what it
    added is what they hold. A summary without per-day counts (over the partition limit)
    costs one count per day in a single job."""
    added = snapshot.added_records_per_partition()
    if added is None:
        per_day = written.where(days.rows).groupBy(days.column).count().collect()  # one per day
        return {row[0]: int(row["count"]) for row in per_day if row[0] is not None}
    counts = {key.split("=", 1)[1]: n for key, n in added.items()}
    return {day: n for day, n in counts.items() if days.first <= day <= days.last}


def _day_previews(written: DataFrame, days: Days, rows_per_day: dict[str, int]) -> dict[str, list]:
    """Up to PREVIEW_ROWS masked rows of each day, in one scan without a shuffle: a seeded
    sample keeps about 4 previews' worth of each day (on average 4 * PREVIEW_ROWS rows per day
    reach the driver, never the table), and the first of each day by value are kept."""
    if not rows_per_day:
        return {}
    share = F.create_map(
        *(
            value
            for day, rows in rows_per_day.items()
            for value in (F.lit(day), F.lit(min(1.0, 4 * PREVIEW_ROWS / max(rows, 1))))
        )
    )
    day = F.col(days.column)
    sample = written.where(day.between(days.first, days.last) & (F.rand(7) < share[day]))
    sampled: dict[str, list] = {}
    for row in mask_pii(sample).collect():  # about 4 * PREVIEW_ROWS per day
        sampled.setdefault(row[days.column], []).append(row)
    # Sorted so that a day's preview does not depend on the order of the scan.
    return {day: sorted(rows, key=_in_column_order)[:PREVIEW_ROWS] for day, rows in sampled.items()}


def _in_column_order(row: Row) -> list[tuple[bool, str]]:
    """A sort key of a row by its values, column by column (None first)."""
    return [(value is not None, str(value)) for value in row]


def column_descriptions(table: str, definition_metadata: Mapping[str, Any]) -> dict[str, str]:
    """What each column of ``table`` holds: the landing columns' COMMENT in ``sql/`` (the
    table's own entity first, so ``serialNumber`` reads as the device's where it is), then what
    the asset's metadata says of the columns it derives."""
    entity = table_spec(table).entity
    descriptions: dict[str, str] = {}
    for spec in sorted(LANDING_TABLES, key=lambda landing: landing.entity == entity):
        descriptions |= landing_ddl(spec.name).descriptions()
    return descriptions | dict(definition_metadata.get(COLUMN_DESCRIPTIONS) or {})


def _cell(value: Any, column: str, descriptions: Mapping[str, str]) -> str:
    if isinstance(value, int) and _EPOCH_MS in descriptions.get(column, ""):
        try:
            moment = datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):  # no date: shown as it is
            return str(value)
        return f"{value} ({moment:%Y-%m-%d %H:%M:%S} UTC)"
    return str(value)


def _markdown(columns: list[str], rows: list, descriptions: Mapping[str, str]) -> str:
    header = "| " + " | ".join(columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = [
        "| " + " | ".join(_cell(row[c], c, descriptions) for c in columns) + " |" for row in rows
    ]
    return "\n".join([header, rule, *body])
