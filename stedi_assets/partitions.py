"""Reading tables are partitioned by the reading's UTC day.

A run covers one day or a contiguous range of days (a backfill of many days is one run, one
Spark job); it recomputes and replaces exactly those days.

The partitions follow the data: they are the days from the first day landing may hold to the
last, added as data arrives (by the ``day_partitions`` sensor, the landing sensor and
``stedi run``), not every day since the product existed. Dagster keeps dynamic partitions in the
order they were added and a range of partitions follows that order, so the days are kept
contiguous and in calendar order (``partition_requests``).
"""

import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

from dagster import (
    AddDynamicPartitionsRequest,
    AssetCheckExecutionContext,
    AssetExecutionContext,
    BackfillPolicy,
    BetaWarning,
    DagsterInstance,
    DeleteDynamicPartitionsRequest,
    DynamicPartitionsDefinition,
)
from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F

DAY_COLUMN = "day"
# The asset metadata of a day-partitioned table: the IO manager writes and reads its run's days.
DAY_PARTITIONED = {
    "stedi/partition_column": DAY_COLUMN,
    "stedi/column_descriptions": {DAY_COLUMN: "UTC day of the reading, YYYY-MM-DD (the partition)"},
}
DAY_PARTITIONED_TABLES = (
    "accelerometer_quarantine",
    "step_trainer_quarantine",
    "accelerometer_trusted",
    "step_trainer_trusted",
    "machine_learning_curated",
)
FIRST_DAY = os.environ.get("STEDI_FIRST_DAY", "2022-01-01")

# Device clocks run ahead a little: a reading may be this much later than the run's time.
FUTURE_TOLERANCE = timedelta(hours=float(os.environ.get("STEDI_FUTURE_TOLERANCE_HOURS", "24")))

# Dagster marks `backfill_policy` beta and warns once per asset that sets it (24 lines in the
# UI's log); this project relies on single-run backfills on purpose.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=BetaWarning)

DAY_PARTITIONS = "day"
daily = DynamicPartitionsDefinition(name=DAY_PARTITIONS)
single_run = BackfillPolicy.single_run()

# Tags that make one run cover a range of partitions (what a single-run backfill sets).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def utc_day(epoch_ms: Column) -> Column:
    """The ``YYYY-MM-DD`` UTC day of an epoch-millisecond column."""
    return F.date_format(F.timestamp_millis(epoch_ms), "yyyy-MM-dd")


def _epoch_ms(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1000)


def plausible_time_window() -> tuple[int, int]:
    """The epoch-ms times a reading may have: from the first day (``STEDI_FIRST_DAY``, when
    the product existed) to now plus ``FUTURE_TOLERANCE`` (``STEDI_FUTURE_TOLERANCE_HOURS``)."""
    return _epoch_ms(_midnight(FIRST_DAY)), _epoch_ms(datetime.now(UTC) + FUTURE_TOLERANCE)


def plausible_time(epoch_ms: Column) -> Column:
    """Whether an epoch-ms reading time is in the plausible window (null when it is null)."""
    first, last = plausible_time_window()
    return epoch_ms.between(first, last)


def _midnight(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def days_between(first: str, last: str) -> list[str]:
    """Every day from ``first`` to ``last`` (ISO dates), both included."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def last_plausible_day() -> str:
    """The last day a reading may have: tomorrow, UTC (device clocks run a little ahead)."""
    return (datetime.now(UTC) + FUTURE_TOLERANCE).date().isoformat()


def partition_requests(
    existing: Sequence[str], first: str, last: str
) -> list[AddDynamicPartitionsRequest | DeleteDynamicPartitionsRequest]:
    """The requests that make the day partitions (``existing``, in Dagster's order) cover
    ``first`` to ``last``: every day from the earliest to the latest, in calendar order. Days
    after the last are appended; a day before the first re-adds them all in order (their
    materializations stay: Dagster keys them by day)."""
    wanted = days_between(min([first, *existing[:1]]), max([last, *existing[-1:]]))
    if list(existing) == wanted[: len(existing)]:
        missing = wanted[len(existing) :]
        return [daily.build_add_request(missing)] if missing else []
    return [
        DeleteDynamicPartitionsRequest(DAY_PARTITIONS, list(existing)),
        daily.build_add_request(wanted),
    ]


def add_days(instance: DagsterInstance, first: str, last: str) -> None:
    """Makes ``instance``'s day partitions cover ``first`` to ``last`` (partition_requests)."""
    for request in partition_requests(instance.get_dynamic_partitions(DAY_PARTITIONS), first, last):
        if isinstance(request, DeleteDynamicPartitionsRequest):
            for key in request.partition_keys:
                instance.delete_dynamic_partition(DAY_PARTITIONS, key)
        else:
            instance.add_dynamic_partitions(DAY_PARTITIONS, list(request.partition_keys))


def readings_of_run_days(
    context: AssetExecutionContext, readings: DataFrame, time_column: str
) -> DataFrame:
    """The readings that fall in this run's days, with their ``day`` partition column."""
    days = context.partition_key_range
    start = _epoch_ms(_midnight(days.start))
    end = _epoch_ms(_midnight(days.end) + timedelta(days=1))
    in_window = (F.col(time_column) >= start) & (F.col(time_column) < end)
    return readings.where(in_window).withColumn(DAY_COLUMN, utc_day(F.col(time_column)))


def rows_of_run_days(context: AssetExecutionContext, rows: DataFrame) -> DataFrame:
    """The rows of ``rows`` (with a ``day`` column) in this run's days, and those without a
    day: every run reads every file outside a day folder, so every run rewrites them."""
    days = context.partition_key_range
    return rows.where(F.col(DAY_COLUMN).between(days.start, days.end) | F.col(DAY_COLUMN).isNull())


def run_days(context: AssetCheckExecutionContext) -> tuple[str, str] | None:
    """The first and last day of a check's run, None for a run without partitions (all
    days)."""
    run = context.op_execution_context
    if not (run.has_partition_key or run.has_partition_key_range):
        return None
    days = run.partition_key_range
    return days.start, days.end


def range_tags(first_day: str, last_day: str) -> dict[str, str]:
    return {RANGE_START_TAG: first_day, RANGE_END_TAG: last_day}


def landing_day_range(readings: list[tuple[DataFrame, str]]) -> tuple[str, str] | None:
    """The first and last UTC day of any reading in ``(landing table, time column)`` pairs,
    clamped to the partitions' first day; None when there is no reading at all."""

    def time_range(reading: tuple[DataFrame, str]) -> Row | None:
        df, column = reading
        # Implausible times are quarantined, not days: they must not stretch the range.
        return (
            df.where(plausible_time(F.col(column)))
            .agg(F.min(column).alias("first"), F.max(column).alias("last"))
            .first()
        )

    # The tables' scans run side by side: each alone leaves a core idle as its last files end.
    with ThreadPoolExecutor(max_workers=max(len(readings), 1)) as pool:
        rows = list(pool.map(time_range, readings))
    bounds = None
    for row in rows:
        if row is None or row["first"] is None:
            continue
        first, last = _day_of(row["first"]), _day_of(row["last"])
        bounds = (first, last) if bounds is None else (min(bounds[0], first), max(bounds[1], last))
    if bounds is None:
        return None
    return max(bounds[0], FIRST_DAY), max(bounds[1], FIRST_DAY)


def _day_of(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d")


def parse_days(text: str) -> tuple[str, str]:
    """``D`` or ``D1..D2`` (ISO dates) as a (first, last) day range; errors say what is wrong."""
    first, _, last = text.partition("..")
    last = last or first
    for day in (first, last):
        try:
            datetime.strptime(day, "%Y-%m-%d")
        except ValueError:
            raise ValueError(f"{day!r} is not a day (YYYY-MM-DD)") from None
    if last < first:
        raise ValueError(f"day range {text!r} ends before it starts")
    if first < FIRST_DAY:
        raise ValueError(f"{first} is before the first partition day {FIRST_DAY}")
    return first, last
