"""The end-to-end consent audit: no table past landing holds a row of anyone whose latest
landing record lacks research consent, on any day.

It recomputes who consents from customer_landing itself (not from customer_trusted, which it
audits) and reads whole tables, so a withdrawal that did not reach every day fails the run.
Who consents is decided by this module's own code (``consenting_customers``), not by the rules'
(customer_trusted.py, consent.py): a bug in the rules cannot hide from the audit by being
shared with it.
"""

from functools import reduce

from dagster import AssetCheckResult, AssetIn, asset_check
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from stedi_assets.assets.machine_learning_curated import machine_learning_curated
from stedi_assets.rules import rule_check
from stedi_assets.storage.landing_reads import CORRUPT_RECORD

# The white space trimmed from identities, listed character by character: ASCII white space,
# next line, Unicode's space and separator characters, zero-width space, byte-order mark. The
# rules match it with a regular expression (identity.py); a test holds the two together.
WHITE_SPACE = "".join(
    chr(code)
    for code in (
        *range(0x09, 0x0E),
        0x20,
        0x85,
        0xA0,
        0x1680,
        *range(0x2000, 0x200C),
        0x2028,
        0x2029,
        0x202F,
        0x205F,
        0x3000,
        0xFEFF,
    )
)


def audit_identity(value: Column) -> Column:
    """An e-mail or serial number as the audit identifies a customer: trimmed of
    ``WHITE_SPACE``, lower-cased, null when nothing is left (README: customer identity)."""
    return F.nullif(F.lower(F.btrim(value, F.lit(WHITE_SPACE))), F.lit(""))


def consenting_customers(customer_landing: DataFrame) -> DataFrame:
    """``email, serialNumber`` (identities, by ``audit_identity``) of every customer whose
    latest landing record (greatest ``lastUpdateDate``) carries ``shareWithResearchAsOfDate``
    and parsed cleanly.

    When in doubt, no consent: on a tie of latest records, one without consent (or garbled)
    decides; a garbled latest record may be a withdrawal. Records without an e-mail belong to
    nobody. One aggregation: each e-mail's greatest (time, doubtful, -consent, serial) struct.
    """
    garbled = (
        F.col(CORRUPT_RECORD).isNotNull()
        if CORRUPT_RECORD in customer_landing.columns
        else F.lit(False)
    )
    doubtful = garbled | F.col("shareWithResearchAsOfDate").isNull()
    latest = (
        customer_landing.withColumn("email", audit_identity(F.col("email")))
        .where(F.col("email").isNotNull())
        .groupBy("email")
        .agg(
            F.max(
                F.struct(
                    F.coalesce(F.col("lastUpdateDate"), F.lit(-(2**62))).alias("time"),
                    doubtful.alias("doubtful"),
                    (-F.col("shareWithResearchAsOfDate")).alias("earlier_consent"),
                    audit_identity(F.col("serialNumber")).alias("serialNumber"),
                )
            ).alias("latest")
        )
    )
    return latest.where(~F.col("latest.doubtful")).select("email", "latest.serialNumber")


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
                audit_identity(F.col(owners[name][0]).cast("string")).alias("_owner"),
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
    "record) in the five research tables (customer_trusted, customers_curated, "
    "accelerometer_trusted, step_trainer_trusted, machine_learning_curated), on the run's days "
    "(every day in an all-days run). Not landing or the quarantine tables: raw data, kept "
    "apart with landing's protection.",
)
def no_rows_of_non_consenting_customers(
    machine_learning_curated: DataFrame,
    customer_landing: DataFrame,
    customer_trusted: DataFrame,
    customers_curated: DataFrame,
    accelerometer_trusted: DataFrame,
    step_trainer_trusted: DataFrame,
) -> AssetCheckResult:
    consenting = consenting_customers(customer_landing)
    tables = {
        "customer_trusted": customer_trusted,
        "customers_curated": customers_curated,
        "accelerometer_trusted": accelerometer_trusted,
        "step_trainer_trusted": step_trainer_trusted,
        "machine_learning_curated": machine_learning_curated,
    }
    counts = rows_of_non_consenting(tables, consenting)
    where = ", ".join(f"{name} ({n})" for name, n in counts.items() if n)
    return rule_check(
        sum(counts.values()),
        what=f"rows of customers without research consent in {where}",
        **{f"{name}_rows": n for name, n in counts.items()},
    )
