"""customers_curated: consenting customers who have accelerometer data — the customers whose
Step Trainer readings may be used.

Rule: customer_trusted rows with at least one accelerometer_trusted reading, one row each.
The readers are found in landing with the accelerometer rule itself, over every day, rather
than from the accelerometer_trusted table: that table is daily and this one is not, and Dagster's
backfills ("Materialize all") cannot plan a daily -> unpartitioned -> daily chain. The customers
are the same; the README's "Lineage" section explains the choice.
Privacy profile: a serial number registered to more than one customer (a fulfillment defect)
cannot say whose step readings are whose, so its customers are left out here and their step
readings never pass; they are counted in this asset's metadata. Every customer's latest record
counts, with or without consent: a device shared with someone who did not consent may be
recording that person.
"""

from dagster import AssetCheckResult, AssetExecutionContext, asset, asset_check
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stedi_assets.assets.accelerometer_trusted import accelerometer_users
from stedi_assets.assets.customer_trusted import latest_customer_records
from stedi_assets.rules import Rules, duplicate_keys, rule_check
from stedi_assets.run_cache import keep_for_run


def customers_with_readings(
    customer_trusted: DataFrame, accelerometer_trusted: DataFrame
) -> DataFrame:
    """``customer_trusted``'s rows with a reading (``user``) in ``accelerometer_trusted``."""
    users = accelerometer_trusted.select(F.col("user").alias("email")).distinct()
    return customer_trusted.join(users, "email", "left_semi").select(*customer_trusted.columns)


def ambiguous_serials(customers: DataFrame) -> DataFrame:
    """Serial numbers held by more than one customer, with how many hold each."""
    return (
        customers.groupBy("serialNumber")
        .agg(F.countDistinct("email").alias("holders"))
        .where(F.col("holders") > 1)
    )


def registered_customers(customer_landing: DataFrame) -> DataFrame:
    """Every customer's latest record, consenting or not: who holds which serial number now."""
    latest = latest_customer_records(customer_landing)
    return latest.where(F.col("serialNumber").isNotNull()).select("email", "serialNumber")


def build_customers_curated(
    customer_trusted: DataFrame,
    accelerometer_trusted: DataFrame,
    customer_landing: DataFrame,
    *,
    privacy: bool,
) -> DataFrame:
    customers = customers_with_readings(customer_trusted, accelerometer_trusted)
    if not privacy:
        return customers
    ambiguous = ambiguous_serials(registered_customers(customer_landing))
    return customers.join(ambiguous, "serialNumber", "left_anti").select(*customers.columns)


@asset(group_name="curated", kinds={"spark", "iceberg"})
def customers_curated(
    context: AssetExecutionContext,
    customer_trusted: DataFrame,
    accelerometer_landing: DataFrame,
    customer_landing: DataFrame,
    rules: Rules,
) -> DataFrame:
    """Consenting customers with accelerometer data (unambiguous serials only, by default)."""
    # Every day's readings that accelerometer_trusted holds or will hold (the IO manager gives
    # an unpartitioned asset all of landing, whatever days the run covers).
    # A few thousand e-mails, kept: the metadata below and the rows returned both use them, and
    # finding them is a pass over every accelerometer landing row.
    readers = keep_for_run(
        accelerometer_users(accelerometer_landing, customer_trusted, privacy=rules.privacy)
    )
    ambiguous = ambiguous_serials(registered_customers(customer_landing))
    with_readings = customers_with_readings(customer_trusted, readers)
    # Both numbers in one job: each ambiguous serial with the customers with readings holding it.
    holders = with_readings.select("serialNumber", "email")
    counts = (
        ambiguous.join(holders, "serialNumber", "left")
        .agg(F.countDistinct("serialNumber").alias("serials"), F.count("email").alias("customers"))
        .first()
    )
    context.add_output_metadata(
        {
            "ambiguous_serials": int(counts["serials"]),
            "customers_with_ambiguous_serial": int(counts["customers"]),
        }
    )
    return build_customers_curated(
        customer_trusted, readers, customer_landing, privacy=rules.privacy
    )


@asset_check(asset=customers_curated, blocking=True, description="One row per e-mail.")
def one_row_per_email(customers_curated: DataFrame) -> AssetCheckResult:
    return rule_check(
        duplicate_keys(customers_curated, "email"),
        what="rows of customers_curated repeating an e-mail (email) of another row",
    )


@asset_check(
    asset=customers_curated,
    blocking=True,
    description="One customer per serial number (enforced by the privacy profile; the udacity "
    "profile reports ambiguous serials).",
)
def one_customer_per_serial(customers_curated: DataFrame, rules: Rules) -> AssetCheckResult:
    # Serial numbers are device ids, not direct identifiers: the first few are named.
    ambiguous = ambiguous_serials(customers_curated).orderBy("serialNumber").collect()
    serials = ", ".join(row.serialNumber for row in ambiguous[:10])
    return rule_check(
        duplicate_keys(customers_curated, "serialNumber"),
        enforced=rules.privacy,
        what=f"rows of customers_curated sharing a serial number (serialNumber {serials})",
        ambiguous_serials=len(ambiguous),
        serials=serials or "none",
    )


@asset_check(
    asset=customers_curated, blocking=True, description="Every customer carries research consent."
)
def consent_present(customers_curated: DataFrame) -> AssetCheckResult:
    return rule_check(
        customers_curated.where(F.col("shareWithResearchAsOfDate").isNull()).count(),
        what="rows of customers_curated without research consent (shareWithResearchAsOfDate)",
    )


customers_curated_checks = [one_row_per_email, one_customer_per_serial, consent_present]
