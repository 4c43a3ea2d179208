"""Every asset check is proven able to fail: data violating exactly its rule makes it fail with
the exact violation count and a message naming what is wrong; clean data makes it pass.

Checks are invoked through their Dagster definitions (not only through the helpers they call),
so a check whose body reports 0 violations whatever the data fails these tests. Expected values
(identifier columns, counts) are written here, never imported from the code under test.
"""

import datetime
import functools
import json
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetsDefinition,
    Definitions,
    ExecuteInProcessResult,
    asset,
    build_asset_check_context,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from stedi_assets import definitions
from stedi_assets.assets.accelerometer_trusted import (
    accelerometer_trusted_checks,
    build_accelerometer_trusted,
)
from stedi_assets.assets.consent_audit import (
    consenting_customers,
    no_rows_of_non_consenting_customers,
)
from stedi_assets.assets.customer_trusted import build_customer_trusted
from stedi_assets.assets.customer_trusted import consent_present as trusted_consent_present
from stedi_assets.assets.customer_trusted import one_row_per_email as trusted_one_row_per_email
from stedi_assets.assets.customers_curated import build_customers_curated, one_customer_per_serial
from stedi_assets.assets.customers_curated import consent_present as curated_consent_present
from stedi_assets.assets.customers_curated import one_row_per_email as curated_one_row_per_email
from stedi_assets.assets.landing import conforming, landing_checks, nonconforming, rejected_rows
from stedi_assets.assets.machine_learning_curated import (
    build_machine_learning_curated,
    no_pii_columns,
    same_customer_pairing,
)
from stedi_assets.assets.step_trainer_trusted import (
    build_step_trainer_trusted,
    step_trainer_trusted_checks,
)
from stedi_assets.definitions import LAKEHOUSE_JOB
from stedi_assets.partitions import (
    DAY_PARTITIONED,
    daily,
    landing_day_range,
    range_tags,
    readings_of_run_days,
    single_run,
    utc_day,
)
from stedi_assets.pii import mask_pii
from stedi_assets.rules import Rules
from stedi_assets.runner import days_in_landing, run_config, run_lakehouse
from stedi_assets.settings import build_resources
from stedi_assets.storage import iceberg
from stedi_assets_tests.conftest import instance_for, lake_catalog, lake_settings, published_table
from stedi_assets_tests.lake_files import files_holding
from stedi_assets_tests.rows import DAY, T0, accelerometer, collect_set, customers, step_trainer

ALICE, BOB, CAROL, DAVE = "alice@test.com", "bob@test.com", "carol@test.com", "dave@test.com"
# The direct identifiers, written here: the checks and the masking are tested against this list,
# not against the one they use.
IDENTIFIER_COLUMNS = ("customerName", "email", "user", "phone", "birthDay")
# Masked in previews as well (the event log outlives erasure), though tables hold them: serial
# numbers, and the raw text of quarantined lines.
PREVIEW_MASKED = (*IDENTIFIER_COLUMNS, "serialNumber", "record")
GARBLED = '{"email": "garbled'

PRIVACY, UDACITY = Rules(profile="privacy"), Rules(profile="udacity")
# Every table past landing.
AUDITED = (
    "customer_trusted",
    "customers_curated",
    "accelerometer_trusted",
    "step_trainer_trusted",
    "machine_learning_curated",
)


def _violations(result: AssetCheckResult) -> int:
    return result.metadata["violations"].value


def _failed(result: AssetCheckResult, count: int, *names: str) -> None:
    """The check failed with ``count`` violations and its description names ``names``."""
    assert not result.passed
    assert _violations(result) == count
    assert result.severity == AssetCheckSeverity.ERROR
    assert result.description is not None
    for name in names:
        assert name in result.description, (name, result.description)


def _passed(result: AssetCheckResult) -> None:
    assert result.passed and _violations(result) == 0, result


# --- shared tiny tables -----------------------------------------------------------------------


def _landing(spark: SparkSession) -> DataFrame:
    """Alice and Bob consent at T0 with their own serials; Carol never consented."""
    return customers(
        spark,
        {"email": ALICE, "serialNumber": "s-a", "shareWithResearchAsOfDate": T0},
        {"email": BOB, "serialNumber": "s-b", "shareWithResearchAsOfDate": T0},
        {"email": CAROL, "serialNumber": "s-c"},
    )


class _Tables(MutableMapping[str, DataFrame]):
    """Every table past landing, as the rules build them from consistent landing data; a test
    may replace tables in its own copy. Each table is built on first use and kept, once per
    session, as plain local rows: a check on it runs one small Spark job, not the chain of rules
    again, and a test that needs one table never computes the others."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.replaced: dict[str, DataFrame] = {}

    def __getitem__(self, name: str) -> DataFrame:
        return self.replaced[name] if name in self.replaced else _built_table(self.spark, name)

    def __setitem__(self, name: str, df: DataFrame) -> None:
        self.replaced[name] = df

    def __delitem__(self, name: str) -> None:
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(AUDITED)

    def __len__(self) -> int:
        return len(AUDITED)


def _tables(spark: SparkSession) -> _Tables:
    return _Tables(spark)


@functools.cache
def _built_table(spark: SparkSession, name: str) -> DataFrame:
    df = _rule_tables(spark)[name]
    return spark.createDataFrame(df.collect(), df.schema)


def _rule_tables(spark: SparkSession) -> dict[str, DataFrame]:
    landing = _landing(spark)
    trusted = build_customer_trusted(landing)
    accel = build_accelerometer_trusted(
        accelerometer(
            spark,
            (ALICE, T0, 1.0, 0.0, 0.0),  # at consent: passes
            (BOB, T0 + 1, 0.0, 0.0, 9.0),
            (CAROL, T0 + 1, 5.0, 5.0, 5.0),  # never consented
        ),
        trusted,
        privacy=True,
    )
    curated = build_customers_curated(trusted, accel, landing, privacy=True)
    steps = build_step_trainer_trusted(
        step_trainer(spark, (T0, "s-a", 100), (T0 + 1, "s-b", 200), (T0 + 1, "s-c", 300)),
        curated,
        privacy=True,
    )
    ml = build_machine_learning_curated(steps, accel, curated, privacy=True)
    return {
        "customer_trusted": trusted,
        "accelerometer_trusted": accel,
        "customers_curated": curated,
        "step_trainer_trusted": steps,
        "machine_learning_curated": ml,
    }


# --- customer_trusted and customers_curated ---------------------------------------------------


@pytest.mark.parametrize(
    ("table", "check"),
    [("customer_trusted", trusted_consent_present), ("customers_curated", curated_consent_present)],
    ids=["customer_trusted", "customers_curated"],
)
def test_consent_present_fails_on_a_customer_without_research_consent(
    spark: SparkSession, table: str, check: Any
) -> None:
    clean = _tables(spark)[table]
    _passed(check(clean))
    leaked = clean.unionByName(
        customers(spark, {"email": CAROL, "serialNumber": "s-c"}).select(*clean.columns)
    )
    _failed(check(leaked), 1, table, "shareWithResearchAsOfDate")


@pytest.mark.parametrize(
    ("table", "check"),
    [
        ("customer_trusted", trusted_one_row_per_email),
        ("customers_curated", curated_one_row_per_email),
    ],
    ids=["customer_trusted", "customers_curated"],
)
def test_one_row_per_email_fails_on_a_repeated_email(
    spark: SparkSession, table: str, check: Any
) -> None:
    clean = _tables(spark)[table]
    _passed(check(clean))
    alice = clean.where(F.col("email") == ALICE)
    # Alice twice more (one an older record with another serial): 2 rows beyond the first.
    repeated = clean.unionByName(alice).unionByName(
        alice.withColumn("serialNumber", F.lit("s-old"))
    )
    _failed(check(repeated), 2, table, "email")


def test_one_customer_per_serial_fails_on_a_shared_serial_and_names_it(
    spark: SparkSession,
) -> None:
    clean = _tables(spark)["customers_curated"]
    _passed(one_customer_per_serial(clean, PRIVACY))
    dave = clean.where(F.col("email") == ALICE).withColumn("email", F.lit(DAVE))
    shared = clean.unionByName(dave)  # Dave holds Alice's serial s-a
    result = one_customer_per_serial(shared, PRIVACY)
    _failed(result, 1, "customers_curated", "serialNumber", "s-a")
    assert result.metadata["ambiguous_serials"].value == 1
    assert result.metadata["serials"].value == "s-a"
    assert "@" not in result.description  # names the device, never the customers
    # The udacity profile reports the same count without blocking.
    rubric = one_customer_per_serial(shared, UDACITY)
    assert (rubric.passed, _violations(rubric), rubric.severity) == (
        False,
        1,
        AssetCheckSeverity.WARN,
    )


# --- accelerometer_trusted and step_trainer_trusted -------------------------------------------

READING_CHECKS = (
    "readings_of_consenting_customers",
    "no_reading_before_consent",
    "no_duplicate_readings",
)


def _reading_results(
    table: str, readings: DataFrame, customers_table: DataFrame, rules: Rules = PRIVACY
) -> dict[str, AssetCheckResult]:
    checks = (
        accelerometer_trusted_checks
        if table == "accelerometer_trusted"
        else (step_trainer_trusted_checks)
    )
    context = build_asset_check_context()
    results = list(checks(context, readings=readings, customers=customers_table, rules=rules))
    assert all(r.asset_key.path[-1] == table for r in results)
    return {r.check_name: r for r in results}


def _reading_case(spark: SparkSession, table: str, tamper: str) -> tuple[DataFrame, DataFrame]:
    """A clean reading table and its customers' table, or the table with one row that breaks
    exactly one rule: ``tamper`` is the check that must catch it (or "none")."""
    tables = _tables(spark)
    readings = tables[table]
    if table == "accelerometer_trusted":
        owners, new = tables["customer_trusted"], accelerometer
        bad = {
            "readings_of_consenting_customers": (CAROL, T0 + 2, 5.0, 5.0, 5.0),
            "no_reading_before_consent": (ALICE, T0 - 1, 1.0, 1.0, 1.0),
        }
    else:
        owners, new = tables["customers_curated"], step_trainer
        bad = {
            "readings_of_consenting_customers": (T0 + 2, "s-c", 300),
            "no_reading_before_consent": (T0 - 1, "s-a", 100),
        }
    if tamper == "no_duplicate_readings":
        readings = readings.unionByName(readings.limit(1))
    elif tamper != "none":
        readings = readings.unionByName(new(spark, bad[tamper]).select(*readings.columns))
    return readings, owners


@pytest.mark.parametrize("table", ["accelerometer_trusted", "step_trainer_trusted"])
def test_reading_checks_pass_on_clean_readings(spark: SparkSession, table: str) -> None:
    readings, owners = _reading_case(spark, table, "none")
    assert readings.count() == 2  # Alice's (at consent) and Bob's
    results = _reading_results(table, readings, owners)
    assert set(results) == set(READING_CHECKS)
    for result in results.values():
        _passed(result)


@pytest.mark.parametrize("check", READING_CHECKS)
@pytest.mark.parametrize("table", ["accelerometer_trusted", "step_trainer_trusted"])
def test_each_reading_check_fails_on_exactly_its_violation(
    spark: SparkSession, table: str, check: str
) -> None:
    readings, owners = _reading_case(spark, table, check)
    results = _reading_results(table, readings, owners)
    names = {
        "readings_of_consenting_customers": (table, "customer_trusted")
        if table == "accelerometer_trusted"
        else (table, "customers_curated"),
        "no_reading_before_consent": (table, "shareWithResearchAsOfDate"),
        "no_duplicate_readings": (table, "duplicate"),
    }
    _failed(results[check], 1, *names[check])
    for other in set(READING_CHECKS) - {check}:
        _passed(results[other])

    # As materialized, with its day column: the one result of a run names the failing day.
    time = "timestamp" if table == "accelerometer_trusted" else "sensorReadingTime"
    dated = readings.withColumn("day", utc_day(F.col(time)))
    result = _reading_results(table, dated, owners)[check]
    assert result.metadata["days"].value == f"{_utc_day(T0)} (1)"
    assert f"(days: {_utc_day(T0)} (1))" in (result.description or "")


@pytest.mark.parametrize("table", ["accelerometer_trusted", "step_trainer_trusted"])
def test_no_reading_before_consent_only_reports_in_the_udacity_profile(
    spark: SparkSession, table: str
) -> None:
    readings, owners = _reading_case(spark, table, "no_reading_before_consent")
    result = _reading_results(table, readings, owners, UDACITY)["no_reading_before_consent"]
    assert (result.passed, _violations(result), result.severity) == (
        False,
        1,
        AssetCheckSeverity.WARN,
    )


# --- machine_learning_curated -----------------------------------------------------------------


def test_no_pii_columns_passes_on_the_machine_learning_columns(spark: SparkSession) -> None:
    table = _tables(spark)["machine_learning_curated"]
    assert table.count() == 2
    _passed(no_pii_columns(table))


@pytest.mark.parametrize("identifier", IDENTIFIER_COLUMNS)
def test_no_pii_columns_fails_on_each_identifier_and_names_it(
    spark: SparkSession, identifier: str
) -> None:
    table = _tables(spark)["machine_learning_curated"].withColumn(identifier, F.lit("x"))
    result = no_pii_columns(table)
    _failed(result, 1, "machine_learning_curated", identifier)
    assert result.metadata["columns"].value == identifier


def test_no_pii_columns_counts_every_leaked_identifier(spark: SparkSession) -> None:
    table = _tables(spark)["machine_learning_curated"]
    for identifier in IDENTIFIER_COLUMNS:
        table = table.withColumn(identifier, F.lit("x"))
    result = no_pii_columns(table)
    _failed(result, 5, *IDENTIFIER_COLUMNS)


def test_same_customer_pairing_fails_on_pairs_of_two_customers_devices(
    spark: SparkSession,
) -> None:
    tables = _tables(spark)
    accel, curated = tables["accelerometer_trusted"], tables["customers_curated"]
    _passed(same_customer_pairing(tables["machine_learning_curated"], accel, curated, PRIVACY))
    # Bob's phone reads at T0 too: the timestamp-only join pairs it with Alice's Step Trainer.
    accel = accel.unionByName(accelerometer(spark, (BOB, T0, 0.0, 7.0, 0.0)))
    rubric = build_machine_learning_curated(
        tables["step_trainer_trusted"], accel, curated, privacy=False
    )
    assert rubric.count() == 3
    result = same_customer_pairing(rubric, accel, curated, PRIVACY)
    _failed(result, 1, "machine_learning_curated", "own customer")
    reported = same_customer_pairing(rubric, accel, curated, UDACITY)
    assert (reported.passed, _violations(reported), reported.severity) == (
        False,
        1,
        AssetCheckSeverity.WARN,
    )


# --- the consent audit ------------------------------------------------------------------------


def _audit(tables: dict[str, DataFrame]) -> AssetCheckResult:
    return no_rows_of_non_consenting_customers(**tables)


def test_consent_audit_passes_on_consistent_tables_and_reads_every_table(
    spark: SparkSession,
) -> None:
    tables = _tables(spark)
    result = _audit({"customer_landing": _landing(spark), **tables})
    _passed(result)
    # Every table past landing is an input of the audit (the IO manager loads each).
    inputs = no_rows_of_non_consenting_customers.keys_by_input_name.values()
    assert {key.path[-1] for key in inputs} == {"customer_landing", *AUDITED}
    assert {k: v.value for k, v in result.metadata.items() if k.endswith("_rows")} == {
        f"{name}_rows": 0 for name in AUDITED
    }


def _row_of_carol(spark: SparkSession, table: str, like: DataFrame) -> DataFrame:
    """One row of Carol (who never consented) in ``table``'s columns."""
    if table in ("customer_trusted", "customers_curated"):
        row = customers(
            spark, {"email": CAROL, "serialNumber": "s-c", "shareWithResearchAsOfDate": T0}
        )
    elif table == "accelerometer_trusted":
        row = accelerometer(spark, (CAROL, T0 + 3, 5.0, 5.0, 5.0))
    elif table == "step_trainer_trusted":
        row = step_trainer(spark, (T0 + 3, "s-c", 300))
    else:
        row = step_trainer(spark, (T0 + 3, "s-c", 300)).select(
            "sensorReadingTime",
            "serialNumber",
            "distanceFromObject",
            *(F.lit(1.0).alias(c) for c in "xyz"),
        )
    return like.unionByName(row.select(*like.columns))


@pytest.mark.parametrize("table", AUDITED)
def test_consent_audit_fails_on_one_row_of_a_non_consenting_customer_in_any_table(
    spark: SparkSession, table: str
) -> None:
    tables = _tables(spark)
    tables[table] = _row_of_carol(spark, table, tables[table])
    result = _audit({"customer_landing": _landing(spark), **tables})
    _failed(result, 1, table, "without research consent")
    counts = {k: v.value for k, v in result.metadata.items() if k.endswith("_rows")}
    assert counts == {f"{name}_rows": int(name == table) for name in AUDITED}


def test_consent_audit_recomputes_consent_from_landing_not_from_customer_trusted(
    spark: SparkSession,
) -> None:
    # Alice withdrew in a later record; every table still holds her (the rules were fooled, all
    # tables agree with each other): only the audit, reading landing itself, can tell.
    tables = _tables(spark)
    landing = _landing(spark).unionByName(
        customers(spark, {"email": ALICE, "serialNumber": "s-a", "lastUpdateDate": T0 + DAY})
    )
    result = _audit({"customer_landing": landing, **tables})
    counts = {k: v.value for k, v in result.metadata.items() if k.endswith("_rows")}
    assert counts == {
        "customer_trusted_rows": 1,
        "customers_curated_rows": 1,
        "accelerometer_trusted_rows": 1,
        "step_trainer_trusted_rows": 1,
        "machine_learning_curated_rows": 1,
    }
    _failed(result, 5, *AUDITED)


def _tricky_landing(spark: SparkSession) -> DataFrame:
    """Records where "who consents" is easy to get wrong, with Spark's corrupt-record column."""
    records = customers(
        spark,
        # Alice: consents, then withdraws (latest record without consent).
        {
            "email": ALICE,
            "serialNumber": "s-a",
            "lastUpdateDate": T0,
            "shareWithResearchAsOfDate": T0,
        },
        {"email": ALICE, "serialNumber": "s-a", "lastUpdateDate": T0 + DAY},
        # Bob: did not consent, then consents with a new device (latest record counts).
        {"email": BOB, "serialNumber": "s-b", "lastUpdateDate": T0},
        {
            "email": BOB,
            "serialNumber": "s-b2",
            "lastUpdateDate": T0 + DAY,
            "shareWithResearchAsOfDate": T0,
        },
        # Carol: two latest records tie, one without consent: not consenting.
        {
            "email": CAROL,
            "serialNumber": "s-c",
            "lastUpdateDate": T0,
            "shareWithResearchAsOfDate": T0,
        },
        {"email": CAROL, "serialNumber": "s-c", "lastUpdateDate": T0},
        # Dave: consents, but his latest record is garbled (a possible withdrawal).
        {
            "email": DAVE,
            "serialNumber": "s-d",
            "lastUpdateDate": T0,
            "shareWithResearchAsOfDate": T0,
        },
        {
            "email": DAVE,
            "serialNumber": "s-d",
            "lastUpdateDate": T0 + DAY,
            "shareWithResearchAsOfDate": T0,
            "phone": "garbled",
        },
        # Erin: never any consent field. Frank: consents, an older record did not.
        {"email": "erin@test.com", "serialNumber": "s-e"},
        {"email": "frank@test.com", "serialNumber": "s-f", "lastUpdateDate": T0 - DAY},
        {
            "email": "frank@test.com",
            "serialNumber": "s-f",
            "lastUpdateDate": T0,
            "shareWithResearchAsOfDate": T0 - DAY,
        },
        # No e-mail: nobody's record.
        {"email": None, "serialNumber": "s-x", "shareWithResearchAsOfDate": T0},
    )
    return records.withColumn(
        "_corrupt_record", F.when(F.col("phone") == "garbled", F.lit(GARBLED))
    )


def test_the_audit_and_the_rules_agree_on_who_consents_in_tricky_records(
    spark: SparkSession,
) -> None:
    landing = _tricky_landing(spark)
    expected = {(BOB, "s-b2"), ("frank@test.com", "s-f")}
    assert collect_set(consenting_customers(landing), "email", "serialNumber") == expected
    assert collect_set(build_customer_trusted(landing), "email", "serialNumber") == expected
    # Without Spark's corrupt-record column (a lake whose JSON all parsed), Dave consents.
    clean = landing.drop("_corrupt_record")
    assert collect_set(consenting_customers(clean), "email", "serialNumber") == {
        *expected,
        (DAVE, "s-d"),
    }
    assert collect_set(build_customer_trusted(clean), "email", "serialNumber") == {
        *expected,
        (DAVE, "s-d"),
    }


def test_the_audit_does_not_share_the_rules_consent_code() -> None:
    source = (Path(__file__).parents[1] / "stedi_assets/assets/consent_audit.py").read_text()
    for shared in ("customer_trusted import", "stedi_assets.consent", "latest_customer_records"):
        assert shared not in source


# --- the landing conformance checks -----------------------------------------------------------


def _landed(df: DataFrame, source_file: str, folder_day: str | None) -> DataFrame:
    """A hand-made landing frame with the columns read_landing adds."""
    if "_corrupt_record" not in df.columns:
        df = df.withColumn("_corrupt_record", F.lit(None).cast("string"))
    return df.withColumn("_source_file", F.lit(source_file)).withColumn(
        "_folder_day", F.lit(folder_day).cast("string")
    )


def _utc_day(epoch_ms: int) -> str:
    return datetime.datetime.fromtimestamp(epoch_ms / 1000, datetime.UTC).date().isoformat()


def _bad_landing(spark: SparkSession, table: str) -> tuple[DataFrame, int]:
    """A landing table with one good line and the given number of bad ones."""
    if table == "customer_landing":
        df = customers(
            spark,
            {"email": ALICE, "serialNumber": "s-a", "shareWithResearchAsOfDate": T0},
            {"email": None, "serialNumber": "s-x"},  # no e-mail
            {"email": BOB, "serialNumber": "s-b", "phone": "garbled"},
        )
        df = df.withColumn("_corrupt_record", F.when(F.col("phone") == "garbled", F.lit(GARBLED)))
        return _landed(df, "file:/lake/customer/landing/bad.json", None), 2
    if table == "accelerometer_landing":
        df = accelerometer(
            spark,
            (ALICE, T0, 1.0, 0.0, 0.0),
            (None, T0, 1.0, 0.0, 0.0),  # no user
            (ALICE, None, 1.0, 0.0, 0.0),  # no timestamp
            (ALICE, T0 + 2 * DAY, 1.0, 0.0, 0.0),  # two days from its folder's day
        )
        return _landed(df, "file:/lake/accelerometer/landing/bad.json", _utc_day(T0)), 3
    df = step_trainer(
        spark,
        (T0, "s-a", 100),
        (T0, None, 100),  # no serial
        (T0 - 3 * DAY, "s-a", 100),  # three days from its folder's day
    )
    return _landed(df, "file:/lake/step_trainer/landing/bad.json", _utc_day(T0)), 2


CONFORMANCE = {c.check_key.asset_key.path[-1]: c for c in landing_checks}
QUARANTINE = {
    "customer_landing": "customer_quarantine",
    "accelerometer_landing": "accelerometer_quarantine",
    "step_trainer_landing": "step_trainer_quarantine",
}


@pytest.mark.parametrize("table", list(QUARANTINE))
def test_conforms_to_ddl_fails_on_quarantined_lines_and_names_the_file(
    spark: SparkSession, table: str
) -> None:
    landing, bad = _bad_landing(spark, table)
    check = CONFORMANCE[table]
    result = check(build_asset_check_context(), landing=landing)
    assert not result.passed and _violations(result) == bad
    assert result.severity == AssetCheckSeverity.WARN  # reported, not blocking
    # Each file is named with the reasons of its lines: "<file> (<count> lines: <reason>); …".
    path = f"file:/lake/{table.split('_landing')[0]}/landing/bad.json"
    entries = result.metadata["files"].value.split("; ")
    assert all(entry.startswith(f"{path} (") for entry in entries), entries
    assert sum(int(entry.removeprefix(f"{path} (").split(" ")[0]) for entry in entries) == bad
    assert any("missing required field" in entry for entry in entries), entries
    assert QUARANTINE[table] in result.description and "bad.json" in result.description
    good = landing.where(~nonconforming(table, landing.columns))
    _passed(check(build_asset_check_context(), landing=good))
    assert conforming(landing, table).count() == landing.count() - bad


# --- behaviours that once survived mutation ---------------------------------------------------


def test_a_reading_more_than_a_day_from_its_folder_day_is_quarantined(spark: SparkSession) -> None:
    day = _utc_day(T0)
    start = int(datetime.datetime.fromisoformat(f"{day}T00:00:00+00:00").timestamp() * 1000)
    readings = _landed(
        accelerometer(
            spark,
            (ALICE, start + 1, 1.0, 0.0, 0.0),  # its folder's day
            (ALICE, start - 1, 2.0, 0.0, 0.0),  # the day before: an upload across midnight
            (ALICE, start + 2 * DAY - 1, 3.0, 0.0, 0.0),  # the day after
            (ALICE, start + 2 * DAY, 4.0, 0.0, 0.0),  # two days after: quarantined
            (ALICE, start - DAY - 1, 5.0, 0.0, 0.0),  # two days before: quarantined
        ),
        "file:/lake/accelerometer/landing/late.json",
        day,
    )
    rejected = rejected_rows(readings, "accelerometer_landing").collect()
    assert len(rejected) == 2
    assert all("more than a day away" in row.reason for row in rejected)
    assert collect_set(conforming(readings, "accelerometer_landing"), "x") == {
        (1.0,),
        (2.0,),
        (3.0,),
    }
    # A file in no day folder is never too far from it.
    nowhere = _landed(accelerometer(spark, (ALICE, start + 9 * DAY, 1.0, 0.0, 0.0)), "f", None)
    assert rejected_rows(nowhere, "accelerometer_landing").count() == 0


def test_a_customer_whose_latest_record_is_garbled_is_left_out(spark: SparkSession) -> None:
    landing = customers(
        spark,
        {
            "email": ALICE,
            "serialNumber": "s-a",
            "lastUpdateDate": T0,
            "shareWithResearchAsOfDate": T0,
        },
        {
            "email": ALICE,
            "serialNumber": "s-a",
            "lastUpdateDate": T0 + DAY,
            "shareWithResearchAsOfDate": T0,
            "phone": "garbled",
        },
        {
            "email": BOB,
            "serialNumber": "s-b",
            "lastUpdateDate": T0 + DAY,
            "shareWithResearchAsOfDate": T0,
        },
        {"email": BOB, "serialNumber": "s-b", "lastUpdateDate": T0, "phone": "garbled"},
    ).withColumn("_corrupt_record", F.when(F.col("phone") == "garbled", F.lit(GARBLED)))
    # Alice's latest record is garbled (maybe a withdrawal); Bob's garbled one is older.
    assert collect_set(build_customer_trusted(landing), "email") == {(BOB,)}


TABLE_COLUMNS = {
    "customer_trusted": (
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
    ),
    "customers_curated": (
        "customerName",
        "email",
        "phone",
        "birthDay",
        "serialNumber",
        "shareWithResearchAsOfDate",
    ),
    "accelerometer_quarantine": ("source_file", "reason", "record", "day"),
    "accelerometer_trusted": ("user", "timestamp", "x", "y", "z", "day"),
    "step_trainer_trusted": ("sensorReadingTime", "serialNumber", "distanceFromObject", "day"),
    "machine_learning_curated": (
        "sensorReadingTime",
        "serialNumber",
        "distanceFromObject",
        "x",
        "y",
        "z",
        "day",
    ),
}


@pytest.mark.parametrize("table", list(TABLE_COLUMNS))
def test_the_preview_masks_every_direct_identifier_of_every_table(
    spark: SparkSession, table: str
) -> None:
    columns = TABLE_COLUMNS[table]
    row = tuple(f"value-of-{c}" for c in columns)
    df = spark.createDataFrame([row], list(columns))
    masked = mask_pii(df).first().asDict()
    assert list(masked) == list(columns)
    for column in columns:
        if column in PREVIEW_MASKED:
            assert masked[column] == "***", column
        else:
            assert masked[column] == f"value-of-{column}", column


@pytest.mark.parametrize("identifier", PREVIEW_MASKED)
def test_mask_pii_masks_each_identifier_column(spark: SparkSession, identifier: str) -> None:
    df = spark.createDataFrame([("secret", "kept")], [identifier, "distanceFromObject"])
    assert mask_pii(df).first().asDict() == {identifier: "***", "distanceFromObject": "kept"}


# --- blocking: a failing check stops everything downstream (whole graph) ----------------------


def _run_with(lake: Path, tampered: AssetsDefinition) -> ExecuteInProcessResult:
    """The whole graph (privacy profile, every day in landing) with one asset replaced."""
    settings = lake_settings(lake)
    assets = [tampered if a.key == tampered.key else a for a in definitions.ASSETS]
    defs = Definitions(
        assets=assets,
        asset_checks=definitions.CHECKS,
        jobs=[definitions.stedi_lakehouse],
        resources=build_resources(settings),
        executor=definitions.in_process_executor,
    )
    days = days_in_landing(settings)
    assert days is not None
    return defs.resolve_job_def(LAKEHOUSE_JOB).execute_in_process(
        run_config=run_config("privacy"),
        raise_on_error=False,
        tags=range_tags(*days),
        instance=instance_for(range_tags(*days)),
    )


def _accelerometer_trusted_with_duplicates() -> AssetsDefinition:
    @asset(
        name="accelerometer_trusted",
        group_name="trusted",
        partitions_def=daily,
        backfill_policy=single_run,
        metadata=DAY_PARTITIONED,
    )
    def _tampered(
        context: AssetExecutionContext,
        accelerometer_landing: DataFrame,
        customer_trusted: DataFrame,
        rules: Rules,
    ) -> DataFrame:
        trusted = build_accelerometer_trusted(accelerometer_landing, customer_trusted, privacy=True)
        return readings_of_run_days(context, trusted.unionByName(trusted.limit(3)), "timestamp")

    return _tampered


def _accelerometer_trusted_losing_a_row() -> AssetsDefinition:
    """Passes every rule's own check (nothing in it is wrong), but one passing reading is gone."""

    @asset(
        name="accelerometer_trusted",
        group_name="trusted",
        partitions_def=daily,
        backfill_policy=single_run,
        metadata=DAY_PARTITIONED,
    )
    def _tampered(
        context: AssetExecutionContext,
        accelerometer_landing: DataFrame,
        customer_trusted: DataFrame,
        rules: Rules,
    ) -> DataFrame:
        trusted = build_accelerometer_trusted(accelerometer_landing, customer_trusted, privacy=True)
        lost = trusted.orderBy("user", "timestamp").limit(1)
        return readings_of_run_days(context, trusted.exceptAll(lost), "timestamp")

    return _tampered


def _customers_curated_without_consent() -> AssetsDefinition:
    @asset(name="customers_curated", group_name="curated")
    def _tampered(
        customer_trusted: DataFrame, accelerometer_landing: DataFrame, customer_landing: DataFrame
    ) -> DataFrame:
        accelerometer_trusted = build_accelerometer_trusted(
            accelerometer_landing, customer_trusted, privacy=True
        )
        curated = build_customers_curated(
            customer_trusted, accelerometer_trusted, customer_landing, privacy=True
        )
        first = curated.orderBy("email").limit(1)
        return curated.join(first.select("email"), "email", "left_anti").unionByName(
            first.withColumn("shareWithResearchAsOfDate", F.lit(None).cast("bigint"))
        )

    return _tampered


def _machine_learning_curated_with_user() -> AssetsDefinition:
    @asset(
        name="machine_learning_curated",
        group_name="curated",
        partitions_def=daily,
        backfill_policy=single_run,
        metadata=DAY_PARTITIONED,
    )
    def _tampered(
        context: AssetExecutionContext,
        step_trainer_trusted: DataFrame,
        accelerometer_trusted: DataFrame,
        customers_curated: DataFrame,
    ) -> DataFrame:
        pairs = build_machine_learning_curated(
            step_trainer_trusted, accelerometer_trusted, customers_curated, privacy=True
        )
        leaky = pairs.withColumn("user", F.lit("someone@test.com"))
        return readings_of_run_days(context, leaky, "sensorReadingTime")

    return _tampered


LANDING = {
    "customer_landing",
    "accelerometer_landing",
    "step_trainer_landing",
    "customer_quarantine",
    "accelerometer_quarantine",
    "step_trainer_quarantine",
}
# What a failing check of accelerometer_trusted does not hold back.
ACCELEROMETER_SIBLINGS = {
    "customer_trusted",
    "accelerometer_trusted",
    "customers_curated",
    "step_trainer_trusted",
}


@pytest.mark.parametrize(
    ("tampered", "failing_checks", "materialized"),
    [
        (
            # Three rows more than passed: the reconciliation fails as well.
            # (customers_curated and step_trainer_trusted do not read accelerometer_trusted.)
            _accelerometer_trusted_with_duplicates,
            {"no_duplicate_readings", "every_landing_row_accounted_for"},
            {*LANDING, *ACCELEROMETER_SIBLINGS},
        ),
        (
            _accelerometer_trusted_losing_a_row,
            {"every_landing_row_accounted_for"},
            {*LANDING, *ACCELEROMETER_SIBLINGS},
        ),
        (
            _customers_curated_without_consent,
            {"consent_present"},
            {*LANDING, "customer_trusted", "accelerometer_trusted", "customers_curated"},
        ),
        (
            _machine_learning_curated_with_user,
            {"no_pii_columns"},
            {
                *LANDING,
                "customer_trusted",
                "accelerometer_trusted",
                "customers_curated",
                "step_trainer_trusted",
                "machine_learning_curated",
            },
        ),
    ],
    ids=[
        "reading_checks",
        "reconciliation",
        "customers_curated_checks",
        "machine_learning_checks",
    ],
)
def test_a_failing_blocking_check_of_each_family_stops_everything_downstream(
    spark: SparkSession,
    simulated_lake: Path,
    tampered: Callable[[], AssetsDefinition],
    failing_checks: set[str],
    materialized: set[str],
) -> None:
    result = _run_with(simulated_lake, tampered())

    assert not result.success
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert {e.check_name for e in failed} == failing_checks
    for evaluation in failed:  # each one alone would have stopped the run
        assert evaluation.metadata["violations"].value > 0
        assert evaluation.blocking and evaluation.severity == AssetCheckSeverity.ERROR
    assert {e.asset_key.path[-1] for e in result.get_asset_materialization_events()} == materialized
    # Written and audited on the run's branch, never published: readers see no rows at all
    # (a fresh lake), and the run's branches are gone.
    catalog = lake_catalog(simulated_lake)
    catalog.register(spark)
    for table in materialized - LANDING:
        assert iceberg.main_snapshot(spark, catalog, table) is None, table
        assert iceberg.run_branches(iceberg.refs(spark, catalog, table)) == [], table


def test_a_withdrawal_is_erased_although_an_unrelated_blocking_check_holds_the_run_back(
    spark: SparkSession, simulated_lake: Path
) -> None:
    assert run_lakehouse(lake_settings(simulated_lake), "privacy").success
    accel_before = published_table(spark, simulated_lake, "accelerometer_trusted").count()
    curated = published_table(spark, simulated_lake, "customers_curated")
    record = curated.orderBy("email").first().asDict()
    email, serial = record["email"], record["serialNumber"]
    own_readings = (
        published_table(spark, simulated_lake, "accelerometer_trusted")
        .where(F.col("user") == email)
        .count()
    )
    assert own_readings > 0
    withdrawal = {k: v for k, v in record.items() if not k.startswith("shareWith")}
    withdrawal["lastUpdateDate"] += 1
    update = simulated_lake / "customer" / "landing" / "withdrawal.json"
    update.write_text(json.dumps(withdrawal) + "\n")

    # The next run fails an accelerometer check: nothing of it is published ...
    result = _run_with(simulated_lake, _accelerometer_trusted_with_duplicates())

    assert not result.success
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert failed == {"no_duplicate_readings", "every_landing_row_accounted_for"}
    accel = published_table(spark, simulated_lake, "accelerometer_trusted")
    assert accel.count() == accel_before - own_readings  # no duplicates, only the erasure
    # ... but the withdrawal is: the customer is gone from every table and every file.
    for name, column, value in (
        ("customer_trusted", "email", email),
        ("customers_curated", "email", email),
        ("accelerometer_trusted", "user", email),
        ("step_trainer_trusted", "serialNumber", serial),
        ("machine_learning_curated", "serialNumber", serial),
    ):
        table = published_table(spark, simulated_lake, name)
        assert table.where(F.col(column) == value).count() == 0, name
    assert files_holding(simulated_lake, email, serial) == []
    catalog = lake_catalog(simulated_lake)
    for table in AUDITED:
        assert iceberg.run_branches(iceberg.refs(spark, catalog, table)) == [], table


def test_a_withdrawal_waits_when_customer_trusted_itself_fails_a_check(
    spark: SparkSession, simulated_lake: Path
) -> None:
    """customer_trusted is what tells a withdrawal: when its own check fails, it is not
    trusted to say who withdrew, and nothing is erased (the next passing run erases)."""
    assert run_lakehouse(lake_settings(simulated_lake), "privacy").success
    trusted_before = published_table(spark, simulated_lake, "customer_trusted").count()

    result = _run_with(simulated_lake, _customer_trusted_losing_a_customer_with_a_duplicate())

    assert not result.success
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed == ["one_row_per_email"]
    assert published_table(spark, simulated_lake, "customer_trusted").count() == trusted_before


def _customer_trusted_losing_a_customer_with_a_duplicate() -> AssetsDefinition:
    @asset(name="customer_trusted", group_name="trusted")
    def _tampered(customer_landing: DataFrame) -> DataFrame:
        trusted = build_customer_trusted(customer_landing)
        first, second = trusted.orderBy("email").limit(2).collect()
        kept = trusted.where(F.col("email") != first.email)  # as if first had withdrawn
        return kept.unionByName(kept.where(F.col("email") == second.email))

    return _tampered


def test_implausible_times_and_non_finite_measurements_are_quarantined_with_their_reason(
    spark: SparkSession,
) -> None:
    """Never dropped silently, never a crash: in a day folder or in none."""
    year_2030 = int(datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC).timestamp() * 1000)
    bad_times = (99_999_999_999_999_999, -5, T0 // 1000, year_2030)  # seconds, not ms: 1970
    nan, inf = float("nan"), float("inf")
    rows = [
        (ALICE, T0, 1.0, 0.0, 0.0),
        *[(ALICE, t, 2.0, 0.0, 0.0) for t in bad_times],
        (ALICE, T0 + 1, nan, 0.0, 0.0),
        (ALICE, T0 + 2, 0.0, inf, 0.0),
        (ALICE, T0 + 3, 0.0, 0.0, -inf),
    ]
    for folder_day in (_utc_day(T0), None):
        readings = _landed(accelerometer(spark, *rows), "file:/lake/a.json", folder_day)
        rejected = rejected_rows(readings, "accelerometer_landing").collect()
        reasons = [row.reason for row in rejected]
        assert sum("plausible window" in r for r in reasons) == len(bad_times), folder_day
        assert sum("not a finite number" in r for r in reasons) == 3, folder_day
        # Quarantined by their file's day folder; in none, the implausible ones have no day.
        days = {row.day for row in rejected}
        assert days == ({folder_day} if folder_day else {_utc_day(T0), None})
        assert collect_set(conforming(readings, "accelerometer_landing"), "x") == {(1.0,)}
        # They do not stretch the run's day range either.
        assert landing_day_range([(readings, "timestamp")]) == (_utc_day(T0), _utc_day(T0))
    steps = _landed(step_trainer(spark, (T0, "s-a", 1), (-1, "s-a", 2)), "file:/s.json", None)
    assert collect_set(rejected_rows(steps, "step_trainer_landing"), "day") == {(None,)}
