"""customer_trusted: the customers who agreed to share their data for research.

Rule (both profiles): one row per customer (the e-mail normalized: ``identity.py``), the
record with the latest ``lastUpdateDate`` (so a later record without consent withdraws the
customer), kept only if that record carries ``shareWithResearchAsOfDate``.
"""

from dagster import AssetCheckResult, asset, asset_check
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from stedi_assets.assets.landing import conforming
from stedi_assets.identity import with_identities
from stedi_assets.rules import duplicate_keys, rule_check
from stedi_assets.storage.landing_reads import CORRUPT_RECORD

CUSTOMER_COLUMNS = (
    "customerName",
    "email",
    "phone",
    "birthDay",
    "serialNumber",
    "registrationDate",
    "lastUpdateDate",
    "shareWithResearchAsOfDate",
    "shareWithPublicAsOfDate",
    "shareWithFriendsAsOfDate",
)


def latest_customer_records(customers: DataFrame) -> DataFrame:
    """Each customer's most recent record (with Spark's corrupt-record column when present),
    one per identity: the e-mail normalized (``identity.py``). On a tie the record without
    research consent wins: when we cannot tell which is current, we assume the customer did
    not consent."""
    newest_first = Window.partitionBy("email").orderBy(
        F.col("lastUpdateDate").desc_nulls_last(),
        F.col("shareWithResearchAsOfDate").asc_nulls_first(),
    )
    return (
        with_identities(customers, "customer_landing")
        .where(F.col("email").isNotNull())
        .withColumn("_recency", F.row_number().over(newest_first))
        .where(F.col("_recency") == 1)
        .select(*CUSTOMER_COLUMNS, *_corrupt_record_column(customers))
    )


def _corrupt_record_column(df: DataFrame) -> list[str]:
    return [CORRUPT_RECORD] if CORRUPT_RECORD in df.columns else []


def build_customer_trusted(customer_landing: DataFrame) -> DataFrame:
    # The latest record decides even when it is garbled: a garbled update may be a withdrawal,
    # so such a customer is left out rather than trusted on an older record.
    latest = conforming(latest_customer_records(customer_landing), "customer_landing")
    return latest.where(F.col("shareWithResearchAsOfDate").isNotNull())


@asset(group_name="trusted", kinds={"spark", "iceberg"})
def customer_trusted(customer_landing: DataFrame) -> DataFrame:
    """Customers whose latest record consents to research, one row per e-mail."""
    return build_customer_trusted(customer_landing)


@asset_check(
    asset=customer_trusted, blocking=True, description="Every row carries research consent."
)
def consent_present(customer_trusted: DataFrame) -> AssetCheckResult:
    return rule_check(
        customer_trusted.where(F.col("shareWithResearchAsOfDate").isNull()).count(),
        what="rows of customer_trusted without research consent (shareWithResearchAsOfDate)",
    )


@asset_check(asset=customer_trusted, blocking=True, description="One row per e-mail.")
def one_row_per_email(customer_trusted: DataFrame) -> AssetCheckResult:
    return rule_check(
        duplicate_keys(customer_trusted, "email"),
        what="rows of customer_trusted repeating an e-mail (email) of another row",
    )


customer_trusted_checks = [consent_present, one_row_per_email]
