"""machine_learning_curated: step readings paired with accelerometer readings taken at the same
millisecond — the training table for the step-detection model. No direct identifiers.

Udacity profile: the rubric's join on the timestamp alone, which pairs one customer's phone with
another customer's Step Trainer when both read at the same millisecond.
Privacy profile: a pair is made only of one customer's own two devices (e-mail <-> serial
number through customers_curated).
"""

from dagster import AssetCheckResult, AssetExecutionContext, AssetIn, asset, asset_check
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stedi_assets.partitions import DAY_PARTITIONED, daily, readings_of_run_days, single_run
from stedi_assets.pii import PII_COLUMNS
from stedi_assets.rules import Rules, rule_check

MACHINE_LEARNING_COLUMNS = (
    "sensorReadingTime",
    "serialNumber",
    "distanceFromObject",
    "x",
    "y",
    "z",
)


def same_customer_pairs(
    step_trainer_trusted: DataFrame, accelerometer_trusted: DataFrame, customers_curated: DataFrame
) -> DataFrame:
    """Step readings joined to the accelerometer readings of the same customer at the same ms."""
    owners = customers_curated.select("serialNumber", F.col("email").alias("user"))
    return (
        step_trainer_trusted.join(owners, "serialNumber")
        .join(
            accelerometer_trusted,
            ["user"],
        )
        .where(F.col("sensorReadingTime") == F.col("timestamp"))
    )


def build_machine_learning_curated(
    step_trainer_trusted: DataFrame,
    accelerometer_trusted: DataFrame,
    customers_curated: DataFrame,
    *,
    privacy: bool,
) -> DataFrame:
    if privacy:
        pairs = same_customer_pairs(step_trainer_trusted, accelerometer_trusted, customers_curated)
    else:
        pairs = step_trainer_trusted.join(
            accelerometer_trusted,
            step_trainer_trusted["sensorReadingTime"] == accelerometer_trusted["timestamp"],
        )
    return pairs.select(*MACHINE_LEARNING_COLUMNS)


@asset(
    group_name="curated",
    kinds={"spark", "iceberg"},
    partitions_def=daily,
    backfill_policy=single_run,
    metadata=DAY_PARTITIONED,
)
def machine_learning_curated(
    context: AssetExecutionContext,
    step_trainer_trusted: DataFrame,
    accelerometer_trusted: DataFrame,
    customers_curated: DataFrame,
    rules: Rules,
) -> DataFrame:
    """Step and accelerometer readings at the same millisecond (of the same customer, by
    default), without any direct identifier; partitioned by the reading's UTC day."""
    pairs = build_machine_learning_curated(
        step_trainer_trusted, accelerometer_trusted, customers_curated, privacy=rules.privacy
    )
    return readings_of_run_days(context, pairs, "sensorReadingTime")


@asset_check(
    asset=machine_learning_curated,
    blocking=True,
    description="No direct identifier (e-mail, user, name, phone, birth day) among the columns.",
)
def no_pii_columns(machine_learning_curated: DataFrame) -> AssetCheckResult:
    leaked = sorted(PII_COLUMNS.intersection(machine_learning_curated.columns))
    columns = ", ".join(leaked)
    return rule_check(
        len(leaked),
        what=f"direct identifier columns in machine_learning_curated ({columns})",
        columns=columns or "none",
    )


@asset_check(
    asset=machine_learning_curated,
    additional_ins={
        "accelerometer_trusted": AssetIn("accelerometer_trusted"),
        "customers_curated": AssetIn("customers_curated"),
    },
    blocking=True,
    description="Every row pairs a Step Trainer reading with an accelerometer reading of the "
    "device's own customer (enforced by the privacy profile; udacity reports the count).",
)
def same_customer_pairing(
    machine_learning_curated: DataFrame,
    accelerometer_trusted: DataFrame,
    customers_curated: DataFrame,
    rules: Rules,
) -> AssetCheckResult:
    return rule_check(
        cross_customer_rows(machine_learning_curated, accelerometer_trusted, customers_curated),
        enforced=rules.privacy,
        what="rows of machine_learning_curated pairing a Step Trainer reading with no "
        "accelerometer reading of the serial's own customer",
    )


def cross_customer_rows(
    machine_learning: DataFrame, accelerometer_trusted: DataFrame, customers_curated: DataFrame
) -> int:
    """Rows that cannot be a reading of the serial's own customer.

    Each row's (ms, serial, x, y, z) must be matched by an accelerometer reading of the
    serial's owner at that ms with those values, one reading per row: rows beyond what the
    owner's readings account for pair the device with someone else's phone. Counted in one
    aggregation over both sides (one shuffle), not a join of two aggregations.
    """
    pair_keys = ["sensorReadingTime", "serialNumber", "x", "y", "z"]
    owners = customers_curated.select(F.col("email").alias("user"), "serialNumber")
    owned = (
        accelerometer_trusted.join(owners, "user")
        .withColumnRenamed("timestamp", "sensorReadingTime")
        .select(*pair_keys, F.lit(0).alias("_rows"), F.lit(1).alias("_owned"))
    )
    made = machine_learning.select(*pair_keys, F.lit(1).alias("_rows"), F.lit(0).alias("_owned"))
    per_key = (
        made.unionByName(owned)
        .groupBy(*pair_keys)  # grouping treats nulls as equal, as a null-safe match would
        .agg(F.sum("_rows").alias("_rows"), F.sum("_owned").alias("_owned"))
    )
    extra = per_key.agg(
        F.coalesce(F.sum(F.greatest(F.col("_rows") - F.col("_owned"), F.lit(0))), F.lit(0))
    )
    return int(extra.first()[0])


machine_learning_curated_checks = [no_pii_columns, same_customer_pairing]
