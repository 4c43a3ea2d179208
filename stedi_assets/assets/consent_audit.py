"""The end-to-end consent audit: no table past landing holds a row of anyone whose latest
landing record lacks research consent, on any day.

It recomputes who consents from customer_landing itself (not from customer_trusted, which it
audits) and reads whole tables, so a withdrawal that did not reach every day fails the run.
"""

from functools import reduce

from dagster import AssetCheckResult, AssetIn, asset_check
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stedi_assets.assets.customer_trusted import build_customer_trusted
from stedi_assets.assets.machine_learning_curated import machine_learning_curated
from stedi_assets.rules import rule_check


def rows_of_non_consenting(tables: dict[str, DataFrame], consenting: DataFrame) -> dict[str, int]:
    """Per table, the rows not owned by a consenting customer (by e-mail or serial number).
    Every table's owner column is stacked into one column and anti-joined once: one Spark job
    for all tables."""
    owners = {
        "customer_trusted": ("email", "email"),
        "customers_curated": ("email", "email"),
        "accelerometer_trusted": ("user", "email"),
        "step_trainer_trusted": ("serialNumber", "serialNumber"),
        "machine_learning_curated": ("serialNumber", "serialNumber"),
    }
    stacked = reduce(
        DataFrame.unionByName,
        (
            df.select(
                F.lit(name).alias("_table"),
                F.lit(owners[name][1]).alias("_key"),
                F.col(owners[name][0]).cast("string").alias("_owner"),
            )
            for name, df in tables.items()
        ),
    )
    allowed = reduce(
        DataFrame.unionByName,
        (
            consenting.select(F.lit(key).alias("_key"), F.col(key).alias("_owner"))
            for key in ("email", "serialNumber")
        ),
    )
    # Null owners never match: a row without an owner is a row of nobody who consented.
    outside = stacked.join(allowed.distinct(), ["_key", "_owner"], "left_anti")
    found = {row["_table"]: row["count"] for row in outside.groupBy("_table").count().collect()}
    return {name: int(found.get(name, 0)) for name in tables}


AUDITED_TABLES = (
    "customer_trusted",
    "customers_curated",
    "accelerometer_trusted",
    "step_trainer_trusted",
)


@asset_check(
    asset=machine_learning_curated,
    blocking=True,
    additional_ins={name: AssetIn(name) for name in ("customer_landing", *AUDITED_TABLES)},
    description="No row of a customer without research consent (per their latest landing "
    "record) in any table past landing, on the run's days (every day in an all-days run).",
)
def no_rows_of_non_consenting_customers(
    machine_learning_curated: DataFrame,
    customer_landing: DataFrame,
    customer_trusted: DataFrame,
    customers_curated: DataFrame,
    accelerometer_trusted: DataFrame,
    step_trainer_trusted: DataFrame,
) -> AssetCheckResult:
    consenting = build_customer_trusted(customer_landing)
    tables = {
        "customer_trusted": customer_trusted,
        "customers_curated": customers_curated,
        "accelerometer_trusted": accelerometer_trusted,
        "step_trainer_trusted": step_trainer_trusted,
        "machine_learning_curated": machine_learning_curated,
    }
    counts = rows_of_non_consenting(tables, consenting)
    return rule_check(sum(counts.values()), **{f"{name}_rows": n for name, n in counts.items()})
