"""Every landing row is accounted for: the reconciliation names each row's outcome, and its
checks fail when a table holds more or fewer rows than the outcomes say.

Expected counts are written here, one landing row per outcome, never imported from the code.
"""

from typing import Any

import pytest
from dagster import AssetCheckResult, build_asset_check_context
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from stedi_assets.assets.accelerometer_trusted import build_accelerometer_trusted
from stedi_assets.assets.customer_trusted import build_customer_trusted
from stedi_assets.assets.landing import rejected_rows
from stedi_assets.assets.reconciliation import (
    customer_outcomes,
    reading_outcomes,
    reconciliation_checks,
)
from stedi_assets.assets.step_trainer_trusted import build_step_trainer_trusted
from stedi_assets.consent import ACCELEROMETER_OWNERSHIP
from stedi_assets.rules import Profile, Rules
from stedi_assets_tests.rows import DAY, T0, accelerometer, customers, step_trainer

ALICE, BOB, CAROL = "alice@test.com", "bob@test.com", "carol@test.com"
DAY_OF_T0 = "2022-06-17"  # T0 is 2022-06-17T21:06:40Z
PRIVACY = Rules(profile=Profile.privacy)
BY_ASSET = {next(iter(c.check_keys)).asset_key.path[-1]: c for c in reconciliation_checks}
CHECKS = {name: c for name, c in BY_ASSET.items() if "quarantine" not in name}
QUARANTINE_CHECKS = {name: c for name, c in BY_ASSET.items() if "quarantine" in name}


def _landed(df: DataFrame, folder_day: str | None, bad_line: str | None = None) -> DataFrame:
    """A landing frame with the columns read_landing adds."""
    return df.select(
        "*",
        F.lit(bad_line).cast("string").alias("_corrupt_record"),
        F.lit(f"file:/lake/landing/{folder_day}/f.json").alias("_source_file"),
        F.lit(folder_day).cast("string").alias("_folder_day"),
        F.lit(None).cast("string").alias("_file_problem"),
    )


def _customer_landing(spark: SparkSession) -> DataFrame:
    good = customers(
        spark,
        # Alice consents in her latest record; her earlier record is superseded.
        {"email": ALICE, "serialNumber": "s-a", "shareWithResearchAsOfDate": T0},
        {"email": " Alice@TEST.com", "serialNumber": "s-a", "lastUpdateDate": T0 - 20 * DAY},
        {"email": BOB, "serialNumber": "s-b"},  # never consented
        {"email": "  ", "serialNumber": "s-x"},  # an e-mail of white space only
        {"email": None, "serialNumber": "s-y"},  # no e-mail: quarantined
    )
    return _landed(good, None)


def test_customer_outcomes_name_every_record(spark: SparkSession) -> None:
    assert customer_outcomes(_customer_landing(spark)) == {
        "landing": 5,
        "passed": 1,
        "superseded by a later record": 1,
        "latest record without research consent": 1,
        "e-mail empty": 1,
        "quarantined": 1,
    }


def _reading_landing(spark: SparkSession) -> DataFrame:
    in_folder = accelerometer(
        spark,
        (ALICE, T0, 1.0, 0.0, 0.0),  # passes
        (ALICE, T0, 1.0, 0.0, 0.0),  # its duplicate
        (ALICE, T0 - 1, 2.0, 0.0, 0.0),  # before Alice's consent
        (CAROL, T0 + 1, 3.0, 0.0, 0.0),  # no consenting owner
        (ALICE, T0 + DAY, 4.0, 0.0, 0.0),  # the next day's: not this run's
        (None, T0, 5.0, 0.0, 0.0),  # no user: quarantined by this run
        (ALICE, T0, float("nan"), 0.0, 0.0),  # not a number: quarantined by this run
    )
    next_folder = accelerometer(spark, (ALICE, None, 6.0, 0.0, 0.0))  # no time, next day's file
    return _landed(in_folder, DAY_OF_T0).unionByName(_landed(next_folder, "2022-06-18"))


def test_reading_outcomes_name_every_reading_of_a_day_run(spark: SparkSession) -> None:
    customer_trusted = build_customer_trusted(_landed(_customer_table(spark), None))
    outcomes = reading_outcomes(
        _reading_landing(spark),
        "accelerometer_landing",
        customer_trusted,
        ACCELEROMETER_OWNERSHIP,
        ("user", "timestamp", "x", "y", "z"),
        privacy=True,
        days=(DAY_OF_T0, DAY_OF_T0),
    )
    assert outcomes == {
        "landing": 8,
        "passed": 1,
        "duplicate": 1,
        "taken before consent": 1,
        "no consenting owner": 1,
        "left for another day's run": 1,
        "quarantined": 2,
        "quarantined by another day's run": 1,
    }


def _customer_table(spark: SparkSession) -> DataFrame:
    return customers(
        spark,
        {"email": ALICE, "serialNumber": "s-a", "shareWithResearchAsOfDate": T0},
        {"email": BOB, "serialNumber": "s-b"},
    )


def _facts(result: AssetCheckResult) -> dict[str, Any]:
    return {name: entry.value for name, entry in result.metadata.items()}


def _customer_check(spark: SparkSession, tamper: str) -> AssetCheckResult:
    landing = _customer_landing(spark)
    trusted = build_customer_trusted(landing)
    if tamper == "trusted row lost":
        trusted = trusted.limit(0)
    elif tamper == "trusted row added":
        trusted = trusted.unionByName(trusted)
    return CHECKS["customer_trusted"](customer_trusted=trusted, landing=landing)


def test_the_customer_reconciliation_passes_on_the_table_the_rules_write(
    spark: SparkSession,
) -> None:
    result = _customer_check(spark, "none")
    assert result.passed, result.description
    facts = _facts(result)
    assert facts["customer_landing rows"] == 5
    assert facts["customer_trusted rows written"] == facts["passed"] == 1


@pytest.mark.parametrize("tamper", ["trusted row lost", "trusted row added"])
def test_the_customer_reconciliation_fails_when_its_table_misses_or_gains_a_row(
    spark: SparkSession, tamper: str
) -> None:
    result = _customer_check(spark, tamper)
    assert not result.passed
    assert _facts(result)["violations"] == 1
    assert result.description is not None and "customer_trusted" in result.description


def _reading_landing_and_table(spark: SparkSession, table: str) -> tuple[DataFrame, DataFrame]:
    """A day's landing readings of Alice (consented), Bob (never) and one without a user, and
    the trusted table the rules build of them."""
    customer_trusted = build_customer_trusted(_landed(_customer_table(spark), None))
    if table == "accelerometer_trusted":
        landing = _landed(
            accelerometer(
                spark,
                (ALICE, T0, 1.0, 0.0, 0.0),
                (ALICE, T0 + 5, 1.5, 0.0, 0.0),
                (BOB, T0, 2.0, 0.0, 0.0),  # Bob never consented
                (None, T0, 3.0, 0.0, 0.0),  # quarantined
            ),
            DAY_OF_T0,
        )
        readings = build_accelerometer_trusted(landing, customer_trusted, privacy=True)
    else:
        # customers_curated as the rules build it holds Alice (her serial s-a).
        landing = _landed(
            step_trainer(
                spark, (T0, "s-a", 100), (T0 + 5, "s-a", 110), (T0, "s-b", 200), (T0, None, 300)
            ),
            DAY_OF_T0,
        )
        readings = build_step_trainer_trusted(landing, customer_trusted, privacy=True)
    return landing, readings.withColumn("day", F.lit(DAY_OF_T0))  # as the run writes them


def _reading_check(spark: SparkSession, table: str, tamper: str) -> AssetCheckResult:
    landing, readings = _reading_landing_and_table(spark, table)
    customers_table = build_customer_trusted(_landed(_customer_table(spark), None))
    if tamper == "trusted row lost":
        readings = readings.limit(1)
    elif tamper == "trusted row added":
        readings = readings.unionByName(readings.limit(1))
    context = build_asset_check_context(resources={"rules": PRIVACY})
    return CHECKS[table](context, **{table: readings}, landing=landing, customers=customers_table)


@pytest.mark.parametrize("table", ["accelerometer_trusted", "step_trainer_trusted"])
def test_the_reading_reconciliation_passes_on_the_tables_the_rules_write(
    spark: SparkSession, table: str
) -> None:
    result = _reading_check(spark, table, "none")
    assert result.passed, result.description
    facts = _facts(result)
    assert facts["passed"] == 2 and facts["no consenting owner"] == 1
    assert facts["quarantined"] == 1


@pytest.mark.parametrize("tamper", ["trusted row lost", "trusted row added"])
@pytest.mark.parametrize("table", ["accelerometer_trusted", "step_trainer_trusted"])
def test_the_reading_reconciliation_fails_when_its_table_misses_or_gains_a_row(
    spark: SparkSession, table: str, tamper: str
) -> None:
    result = _reading_check(spark, table, tamper)
    assert not result.passed
    assert _facts(result)["violations"] == 1
    assert result.description is not None and table in result.description


def _quarantine_check(spark: SparkSession, table: str, tamper: str) -> AssetCheckResult:
    if table == "customer_quarantine":
        landing = _customer_landing(spark)
        landing_table = "customer_landing"
    else:
        landing_table = table.replace("quarantine", "landing")
        landing, _ = _reading_landing_and_table(spark, table.replace("quarantine", "trusted"))
    quarantine = rejected_rows(landing, landing_table)
    assert quarantine.count() == 1
    if tamper == "row lost":
        quarantine = quarantine.limit(0)
    elif tamper == "row added":
        quarantine = quarantine.unionByName(quarantine)
    return QUARANTINE_CHECKS[table](
        build_asset_check_context(), quarantine=quarantine, landing=landing
    )


QUARANTINE_TABLES = ["customer_quarantine", "accelerometer_quarantine", "step_trainer_quarantine"]


@pytest.mark.parametrize("table", QUARANTINE_TABLES)
def test_the_quarantine_check_passes_on_the_rejected_lines(spark: SparkSession, table: str) -> None:
    result = _quarantine_check(spark, table, "none")
    assert result.passed, result.description
    assert _facts(result)["rejected"] == _facts(result)["written"] == 1


@pytest.mark.parametrize("tamper", ["row lost", "row added"])
@pytest.mark.parametrize("table", QUARANTINE_TABLES)
def test_the_quarantine_check_fails_when_the_quarantine_misses_or_gains_a_line(
    spark: SparkSession, table: str, tamper: str
) -> None:
    result = _quarantine_check(spark, table, tamper)
    assert not result.passed
    assert _facts(result)["violations"] == 1
    assert result.description is not None and table in result.description
