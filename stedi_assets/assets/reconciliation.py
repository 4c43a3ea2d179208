"""Every landing row is accounted for: it passes, a named rule leaves it out, or it is quarantined.

For each landing table a blocking check on its trusted table recounts the run's landing rows by
outcome, with the rules' own functions, and reconciles

    landing = passed + each rule's exclusions + quarantined

where ``passed`` must equal the rows this run wrote to the trusted table; a blocking check on
the quarantine table holds it to ``quarantined``. A row lost or added anywhere between landing
and the tables fails a check, and the metadata shows every term of the sum. (Each check reads
only its own table and what lies upstream of it, so "Materialize" on one asset works alone.)
"""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetIn,
    AssetsDefinition,
    asset_check,
)
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from stedi_assets.assets.accelerometer_trusted import ACCELEROMETER_COLUMNS, accelerometer_trusted
from stedi_assets.assets.customer_trusted import customer_trusted, latest_customer_records
from stedi_assets.assets.landing import (
    READING_TIME,
    conforming,
    landing_assets,
    nonconforming,
    quarantine_day,
)
from stedi_assets.assets.step_trainer_trusted import STEP_TRAINER_COLUMNS, step_trainer_trusted
from stedi_assets.consent import (
    ACCELEROMETER_OWNERSHIP,
    CONSENT,
    STEP_TRAINER_OWNERSHIP,
    Ownership,
)
from stedi_assets.identity import identity
from stedi_assets.partitions import DAY_COLUMN, run_days, utc_day
from stedi_assets.rules import Rules, rule_check
from stedi_assets.storage.layout import quarantine_of

PASSED = "passed"
QUARANTINED = "quarantined"


def _in(days: tuple[str, str] | None, day: Column) -> Column:
    return F.lit(True) if days is None else day.between(*days)


def reading_outcomes(
    landing: DataFrame,
    table: str,
    customers: DataFrame,
    ownership: Ownership,
    columns: tuple[str, ...],
    *,
    privacy: bool,
    days: tuple[str, str] | None,
) -> dict[str, int]:
    """How many of a run's landing readings pass, are quarantined, or which rule leaves out."""
    bad = nonconforming(table, landing.columns)
    quarantined_day = quarantine_day(table)
    # A day's run writes the quarantine of its days (and of lines no day can be given).
    this_run = quarantined_day.isNull() | _in(days, quarantined_day)
    counts = landing.agg(
        F.count(F.lit(1)).alias("landing"),
        F.count_if(bad & this_run).alias(QUARANTINED),
        F.count_if(bad & ~this_run).alias("quarantined by another day's run"),
    ).first()
    outcomes = {name: int(counts[name]) for name in counts.asDict()}

    readings = conforming(landing, table).select(*columns)
    # customers_curated of the udacity profile may repeat a serial: one owner per key.
    owners = customers.groupBy(F.col(ownership.customer_key).alias("_owner")).agg(
        F.min(CONSENT).alias("_consent")
    )
    attributed = readings.join(
        F.broadcast(owners), readings[ownership.reading_owner] == owners["_owner"], "left"
    )
    time = F.col(ownership.reading_time)
    outcome = (
        F.when(~_in(days, utc_day(time)), "left for another day's run")
        .when(F.col("_owner").isNull(), "no consenting owner")
        .when(F.lit(privacy) & (time < F.col("_consent")), "taken before consent")
        .otherwise(PASSED)
    )
    # Per distinct row: the repeats of a passing row are the duplicates the rule drops. Only
    # passing rows need telling apart; the others only need counting, so their columns are
    # blanked and each outcome collapses to one group before the shuffle.
    passed = outcome == PASSED
    per_row = attributed.groupBy(
        outcome.alias("outcome"), *[F.when(passed, F.col(c)).alias(c) for c in columns]
    ).count()
    for row in (
        per_row.groupBy("outcome")
        .agg(F.sum("count").alias("rows"), F.count(F.lit(1)).alias("distinct"))
        .collect()
    ):  # one row per outcome
        if row["outcome"] == PASSED:
            outcomes[PASSED] = int(row["distinct"])
            outcomes["duplicate"] = int(row["rows"] - row["distinct"])
        else:
            outcomes[row["outcome"]] = int(row["rows"])
    return outcomes


def customer_outcomes(landing: DataFrame) -> dict[str, int]:
    """How many customer landing records pass, are quarantined, or which rule leaves out."""
    bad = nonconforming("customer_landing", landing.columns)
    counts = landing.agg(
        F.count(F.lit(1)).alias("landing"),
        F.count_if(bad).alias(QUARANTINED),
        F.count_if(~bad & identity(F.col("email")).isNull()).alias("e-mail empty"),
    ).first()
    outcomes = {name: int(counts[name]) for name in counts.asDict()}
    latest = conforming(latest_customer_records(landing), "customer_landing")
    consent = latest.agg(
        F.count_if(F.col(CONSENT).isNotNull()).alias(PASSED),
        F.count_if(F.col(CONSENT).isNull()).alias("latest record without research consent"),
    ).first()
    outcomes |= {name: int(consent[name]) for name in consent.asDict()}
    latest_records = outcomes[PASSED] + outcomes["latest record without research consent"]
    kept_apart = outcomes[QUARANTINED] + outcomes["e-mail empty"] + latest_records
    # Every other well-formed record is an earlier (or repeated) record of a customer.
    outcomes["superseded by a later record"] = outcomes["landing"] - kept_apart
    return outcomes


def _reconciled(
    outcomes: dict[str, int], table: str, trusted_table: str, written: int
) -> AssetCheckResult:
    """The trusted table's result: the sum holds, and the table holds the passed rows."""
    landing = outcomes["landing"]
    accounted = sum(n for name, n in outcomes.items() if name != "landing")
    mismatches = {
        f"landing rows not accounted for ({landing} read, {accounted} accounted)": abs(
            landing - accounted
        ),
        f"rows of {trusted_table} other than the passed rows ({written} written, "
        f"{outcomes[PASSED]} passed)": abs(written - outcomes[PASSED]),
    }
    failing = "; ".join(what for what, n in mismatches.items() if n)
    return rule_check(
        sum(mismatches.values()),
        what=f"{table} does not reconcile: {failing}",
        **{f"{table} rows": landing},
        **{name: n for name, n in outcomes.items() if name != "landing"},
        **{f"{trusted_table} rows written": written},
    )


@asset_check(
    asset=customer_trusted,
    name="every_landing_row_accounted_for",
    blocking=True,
    additional_ins={"landing": AssetIn("customer_landing")},
    description="customer_landing = passed + superseded + without consent + empty e-mail "
    "+ quarantined; the passed rows are the rows written to customer_trusted.",
)
def customer_reconciliation(customer_trusted: DataFrame, landing: DataFrame) -> AssetCheckResult:
    return _reconciled(
        customer_outcomes(landing), "customer_landing", "customer_trusted", customer_trusted.count()
    )


def _reading_description(landing_table: str, trusted_table: str) -> str:
    return (
        f"{landing_table} read by the run = passed + each rule's exclusions (no consenting "
        "owner, before consent, duplicate, another day's) + quarantined; the passed rows are "
        f"the rows the run wrote to {trusted_table}."
    )


def _reconciled_readings(
    context: AssetCheckExecutionContext,
    trusted_table: str,
    readings: DataFrame,
    landing: DataFrame,
    customers: DataFrame,
    rules: Rules,
) -> AssetCheckResult:
    landing_table = trusted_table.replace("_trusted", "_landing")
    ownership, columns = {
        "accelerometer_trusted": (ACCELEROMETER_OWNERSHIP, ACCELEROMETER_COLUMNS),
        "step_trainer_trusted": (STEP_TRAINER_OWNERSHIP, STEP_TRAINER_COLUMNS),
    }[trusted_table]
    days = run_days(context)
    outcomes = reading_outcomes(
        landing, landing_table, customers, ownership, columns, privacy=rules.privacy, days=days
    )
    # A check reads its table whole: the run wrote its days.
    written = readings.where(_in(days, F.col(DAY_COLUMN)))
    return _reconciled(outcomes, landing_table, trusted_table, written.count())


@asset_check(
    asset=accelerometer_trusted,
    name="every_landing_row_accounted_for",
    blocking=True,
    additional_ins={
        "landing": AssetIn("accelerometer_landing"),
        "customers": AssetIn("customer_trusted"),
    },
    description=_reading_description("accelerometer_landing", "accelerometer_trusted"),
)
def accelerometer_reconciliation(
    context: AssetCheckExecutionContext,
    accelerometer_trusted: DataFrame,
    landing: DataFrame,
    customers: DataFrame,
    rules: Rules,
) -> AssetCheckResult:
    return _reconciled_readings(
        context, "accelerometer_trusted", accelerometer_trusted, landing, customers, rules
    )


@asset_check(
    asset=step_trainer_trusted,
    name="every_landing_row_accounted_for",
    blocking=True,
    additional_ins={
        "landing": AssetIn("step_trainer_landing"),
        "customers": AssetIn("customers_curated"),
    },
    description=_reading_description("step_trainer_landing", "step_trainer_trusted"),
)
def step_trainer_reconciliation(
    context: AssetCheckExecutionContext,
    step_trainer_trusted: DataFrame,
    landing: DataFrame,
    customers: DataFrame,
    rules: Rules,
) -> AssetCheckResult:
    return _reconciled_readings(
        context, "step_trainer_trusted", step_trainer_trusted, landing, customers, rules
    )


def quarantined_lines(landing: DataFrame, table: str, days: tuple[str, str] | None) -> int:
    """How many of the run's landing lines its quarantine must hold."""
    bad = nonconforming(table, landing.columns)
    if table in READING_TIME:
        day = quarantine_day(table)
        bad = bad & (day.isNull() | _in(days, day))
    return int(landing.agg(F.count_if(bad).alias("n")).first()["n"])


def _quarantine_check(landing_asset: AssetsDefinition) -> AssetChecksDefinition:
    table = landing_asset.key.path[-1]
    quarantine_table = quarantine_of(table).name

    @asset_check(
        asset=quarantine_table,
        name="holds_every_rejected_line",
        blocking=True,
        additional_ins={"landing": AssetIn(landing_asset.key)},
        description=f"{quarantine_table} holds exactly the lines of {table} the run read that "
        "do not conform (the `quarantined` term of the reconciliation).",
    )
    def _check(
        context: AssetCheckExecutionContext, quarantine: DataFrame, landing: DataFrame
    ) -> AssetCheckResult:
        days = run_days(context) if table in READING_TIME else None
        expected = quarantined_lines(landing, table, days)
        if table in READING_TIME:  # read whole: the run wrote its days and the undatable lines
            day = F.col(DAY_COLUMN)
            quarantine = quarantine.where(day.isNull() | _in(days, day))
        written = quarantine.count()
        return rule_check(
            abs(written - expected),
            what=f"rows of {quarantine_table} other than the rejected lines of {table} "
            f"({written} written, {expected} rejected)",
            rejected=expected,
            written=written,
        )

    return _check


reconciliation_checks = [
    customer_reconciliation,
    accelerometer_reconciliation,
    step_trainer_reconciliation,
    *(_quarantine_check(landing) for landing in landing_assets),
]
