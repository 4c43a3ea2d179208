"""The landing zone: JSON lines exactly as devices and the website upload them.

Landing assets do not copy data; downstream assets read their files through the IO manager
with the schema from ``sql/``. Lines that do not fit the DDL, or lack the fields that identify
a record, go to the landing table's quarantine asset with the reason and the file, and a
(non-blocking) conformance check reports them: downstream rules drop them, and good lines are
never held back by bad ones.
"""

from collections.abc import Sequence
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    asset,
    asset_check,
)
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from stedi_assets.identity import with_identities
from stedi_assets.partitions import (
    DAY_COLUMN,
    DAY_PARTITIONED,
    FIRST_DAY,
    FUTURE_TOLERANCE,
    daily,
    plausible_time,
    plausible_time_window,
    rows_of_run_days,
    run_days,
    single_run,
    utc_day,
)
from stedi_assets.rules import rule_check
from stedi_assets.storage.landing_reads import (
    CORRUPT_RECORD,
    FILE_PROBLEM,
    FOLDER_DAY,
    LANDING_EXTRA_COLUMNS,
    SOURCE_FILE,
)
from stedi_assets.storage.layout import quarantine_of

# The fields without which a record cannot be attributed to anyone.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "customer_landing": ("email",),
    "accelerometer_landing": ("user", "timestamp"),
    "step_trainer_landing": ("sensorReadingTime", "serialNumber"),
}


# The epoch-ms time of each reading table: a reading must sit in (or next to) its day's folder.
READING_TIME: dict[str, str] = {
    "accelerometer_landing": "timestamp",
    "step_trainer_landing": "sensorReadingTime",
}


# Measurements that must be finite numbers (JSON's NaN, Infinity and 1e400 parse as doubles).
MEASUREMENTS: dict[str, tuple[str, ...]] = {"accelerometer_landing": ("x", "y", "z")}


def _implausible_time(table: str) -> Column:
    """A reading time outside the plausible window (partitions.plausible_time_window)."""
    return F.coalesce(~plausible_time(F.col(READING_TIME[table])), F.lit(False))


def _not_finite(table: str) -> Column:
    """A measurement that is NaN or infinite."""
    condition = F.lit(False)
    for column in MEASUREMENTS.get(table, ()):
        value = F.col(column)
        not_finite = F.isnan(value) | value.isin(float("inf"), float("-inf"))
        condition = condition | F.coalesce(not_finite, F.lit(False))
    return condition


def _reading_day(table: str) -> Column:
    """The UTC day of a plausible reading time (null otherwise: no date arithmetic on times
    Spark cannot represent, such as 99999999999999999)."""
    time = F.col(READING_TIME[table])
    return F.when(plausible_time(time), utc_day(time))


def _days_from_its_folder(table: str) -> Column:
    """How many days a reading lies from the day folder of its file (null: no day folder)."""
    return F.abs(F.datediff(F.to_date(_reading_day(table)), F.to_date(F.col(FOLDER_DAY))))


def nonconforming(table: str, columns: Sequence[str] = LANDING_EXTRA_COLUMNS) -> Column:
    """Rows Spark could not parse against the DDL, that lack a required field, readings at an
    implausible time or with a measurement that is not a finite number, or readings filed more
    than a day away from their day folder (no day's run would read them)."""
    condition = F.col(CORRUPT_RECORD).isNotNull() if CORRUPT_RECORD in columns else F.lit(False)
    if FILE_PROBLEM in columns:
        condition = condition | F.col(FILE_PROBLEM).isNotNull()
    for field in REQUIRED_FIELDS[table]:
        condition = condition | F.col(field).isNull()
    if table in READING_TIME:
        condition = condition | _implausible_time(table) | _not_finite(table)
        if FOLDER_DAY in columns:
            condition = condition | F.coalesce(_days_from_its_folder(table) > 1, F.lit(False))
    return condition


def conforming(df: DataFrame, table: str) -> DataFrame:
    """The rows of ``df`` that fit the DDL and carry their required fields, without Spark's
    corrupt-record column, their identities normalized (``identity.py``). A row with one
    unparsable field is not trusted at all."""
    conforming_rows = df.where(~nonconforming(table, df.columns)).drop(*LANDING_EXTRA_COLUMNS)
    return with_identities(conforming_rows, table)


def rejected_rows(landing: DataFrame, table: str) -> DataFrame:
    """The nonconforming rows, each with why it was rejected, the file it came from, and the
    record as it arrived (the raw line when it did not parse)."""
    file_problem = F.col(FILE_PROBLEM) if FILE_PROBLEM in landing.columns else F.lit(None)
    reason = F.when(
        file_problem.isNotNull(), F.concat(F.lit("file not read: "), file_problem)
    ).when(
        F.col(CORRUPT_RECORD).isNotNull(),
        F.lit(f"does not parse against sql/{table}.sql (malformed JSON or a wrong type)"),
    )
    for field in REQUIRED_FIELDS[table]:
        reason = reason.when(F.col(field).isNull(), F.lit(f"missing required field {field}"))
    if table in READING_TIME:
        first, last = plausible_time_window()
        reason = reason.when(
            _implausible_time(table),
            F.lit(
                f"reading time outside the plausible window: before {FIRST_DAY} or later than "
                f"the run's time plus {FUTURE_TOLERANCE} (epoch ms {first}..{last})"
            ),
        )
        if table in MEASUREMENTS:
            measured = ", ".join(MEASUREMENTS[table])
            reason = reason.when(
                _not_finite(table), F.lit(f"a measurement ({measured}) is not a finite number")
            )
        reason = reason.when(
            _days_from_its_folder(table) > 1,
            F.lit("reading filed more than a day away from its file's day folder"),
        )
    fields = [c for c in landing.columns if c not in LANDING_EXTRA_COLUMNS]
    record = F.coalesce(F.col(CORRUPT_RECORD), F.to_json(F.struct(*fields)))
    # A line of invalid UTF-8 keeps its bytes in Spark's string; round-tripping through Java's
    # encoder makes it valid (each bad byte becomes U+FFFD), so every reader can decode it.
    record = F.decode(F.encode(record, "UTF-8"), "UTF-8")
    columns = [
        F.col(SOURCE_FILE).alias("source_file"),
        reason.alias("reason"),
        record.alias("record"),
    ]
    if table in READING_TIME:
        columns.append(quarantine_day(table).alias(DAY_COLUMN))
    return landing.where(nonconforming(table, landing.columns)).select(*columns)


def quarantine_day(table: str) -> Column:
    """The day of a quarantined reading line: its file's day folder (the run that reads a
    day's files writes that day's quarantine), else the reading's own day, else none."""
    return F.coalesce(F.col(FOLDER_DAY), _reading_day(table))


def _landing_asset(table: str, description: str) -> AssetsDefinition:
    @asset(name=table, group_name="landing", kinds={"spark", "json"}, description=description)
    def _asset() -> Any:
        # Devices write landing; materializing it describes the files as they are now (the IO
        # manager counts their lines and registers the table where a catalog holds it).
        return None

    return _asset


def _quarantine_asset(landing: AssetsDefinition) -> AssetsDefinition:
    table = landing.key.path[-1]
    # Reading files sit in day folders: a day's run writes that day's quarantine. Customer files
    # are in none: every run reads them all, and rewrites the whole customer quarantine.
    dated = table in READING_TIME
    descriptions = {
        "source_file": "The landing file the line came from",
        "reason": "Why the line was rejected",
        "record": "The line as it arrived: its raw text when it did not parse",
        DAY_COLUMN: "The day folder of the file, else the reading's UTC day; null when neither "
        "(the partition)",
    }
    metadata = {**DAY_PARTITIONED, "stedi/column_descriptions": descriptions}
    day_partitioned: dict[str, Any] = {"partitions_def": daily, "backfill_policy": single_run}

    @asset(
        name=quarantine_of(table).name,
        ins={"landing": AssetIn(landing.key)},
        group_name="landing",
        kinds={"spark", "iceberg"},
        description=f"Lines of {table} that do not fit sql/{table}.sql or lack "
        f"{', '.join(REQUIRED_FIELDS[table])}, with the reason and the file they came from. "
        "Raw landing data: landing's protection, not the research tables'."
        + (" Partitioned by the day folder of the file (else the reading's day)." if dated else ""),
        metadata=metadata if dated else {"stedi/column_descriptions": descriptions},
        **(day_partitioned if dated else {}),
    )
    def _asset(context: AssetExecutionContext, landing: DataFrame) -> DataFrame:
        rejected = rejected_rows(landing, table)
        return rows_of_run_days(context, rejected) if dated else rejected

    return _asset


customer_landing = _landing_asset(
    "customer_landing", "Customer records from the STEDI website, with their consent dates."
)
accelerometer_landing = _landing_asset(
    "accelerometer_landing", "Phone accelerometer readings (x, y, z) per user e-mail."
)
step_trainer_landing = _landing_asset(
    "step_trainer_landing", "Step Trainer distance readings per device serial number."
)


def _conformance_check(landing: AssetsDefinition) -> AssetChecksDefinition:
    table = landing.key.path[-1]
    quarantine_table = quarantine_of(table).name
    dated = table in READING_TIME

    @asset_check(
        asset=landing,
        name="conforms_to_ddl",
        description=f"Rows of {table} that do not fit sql/{table}.sql or lack "
        f"{', '.join(REQUIRED_FIELDS[table])}: they are in {quarantine_table}, not downstream.",
    )
    def _check(context: AssetCheckExecutionContext, landing: DataFrame) -> AssetCheckResult:
        # The rejected lines as the run's quarantine holds them, recomputed from landing: the
        # quarantine of a reading table is day-partitioned and a backfill builds it in a later
        # run than landing and this check.
        rejected = rejected_rows(landing, table)
        days = run_days(context)
        if dated and days is not None:
            day = F.col(DAY_COLUMN)
            rejected = rejected.where(day.isNull() | day.between(*days))
        # Spark's JSON reader keeps no line numbers: each file is named with its lines' reasons.
        per_file = rejected.groupBy("source_file", "reason").count().cache()
        top = per_file.orderBy(F.desc("count"), "source_file").limit(10).collect()  # ten at most
        files = "; ".join(f"{row.source_file} ({row['count']} lines: {row.reason})" for row in top)
        lines = per_file.agg(F.sum("count")).first()[0] or 0
        per_file.unpersist()
        return rule_check(
            int(lines),
            enforced=False,
            what=f"lines of {table} that do not fit sql/{table}.sql or lack a required field, "
            f"in {quarantine_table} (files: {files})",
            files=files or "none",
        )

    return _check


landing_assets = [customer_landing, accelerometer_landing, step_trainer_landing]
quarantine_assets = [_quarantine_asset(a) for a in landing_assets]
landing_checks = [_conformance_check(a) for a in landing_assets]
