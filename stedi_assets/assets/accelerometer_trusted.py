"""accelerometer_trusted: phone readings of customers who consented to research.

Rule: readings whose ``user`` is a customer_trusted e-mail, accelerometer columns only, exact
duplicates (a file uploaded twice) once. Privacy profile: also only readings taken at or after
the customer's ``shareWithResearchAsOfDate``.
"""

from dagster import AssetExecutionContext, asset
from pyspark.sql import DataFrame

from stedi_assets.assets.landing import conforming
from stedi_assets.assets.reading_checks import reading_checks
from stedi_assets.consent import ACCELEROMETER_OWNERSHIP as OWNERSHIP
from stedi_assets.partitions import DAY_PARTITIONED, daily, readings_of_run_days, single_run
from stedi_assets.rules import Rules

ACCELEROMETER_COLUMNS = ("user", "timestamp", "x", "y", "z")


def build_accelerometer_trusted(
    accelerometer_landing: DataFrame, customer_trusted: DataFrame, *, privacy: bool
) -> DataFrame:
    readings = conforming(accelerometer_landing, "accelerometer_landing").select(
        *ACCELEROMETER_COLUMNS
    )
    # Consent before de-duplication: the same rows either way, but only the readings that
    # pass are shuffled (dropDuplicates shuffles; the few customers are broadcast).
    return OWNERSHIP.consenting(readings, customer_trusted, privacy=privacy).dropDuplicates()


def accelerometer_users(
    accelerometer_landing: DataFrame, customer_trusted: DataFrame, *, privacy: bool
) -> DataFrame:
    """The e-mails (``user``) with at least one reading that accelerometer_trusted holds: the
    rule above without its de-duplication, which removes no e-mail's last reading. A distinct
    of a few thousand e-mails, rather than a shuffle of every reading."""
    readings = conforming(accelerometer_landing, "accelerometer_landing").select(
        "user", "timestamp"
    )
    consenting = OWNERSHIP.consenting(readings, customer_trusted, privacy=privacy)
    return consenting.select("user").distinct()


@asset(
    group_name="trusted",
    kinds={"spark", "iceberg"},
    partitions_def=daily,
    backfill_policy=single_run,
    metadata=DAY_PARTITIONED,
)
def accelerometer_trusted(
    context: AssetExecutionContext,
    accelerometer_landing: DataFrame,
    customer_trusted: DataFrame,
    rules: Rules,
) -> DataFrame:
    """Accelerometer readings of consenting customers (since their consent, by default),
    partitioned by the reading's UTC day."""
    trusted = build_accelerometer_trusted(
        accelerometer_landing, customer_trusted, privacy=rules.privacy
    )
    return readings_of_run_days(context, trusted, "timestamp")


accelerometer_trusted_checks = reading_checks(accelerometer_trusted, "customer_trusted", OWNERSHIP)
