"""Every table rule on tiny hand-made DataFrames: each test fails when its rule is removed."""

import pytest
from pyspark.sql import SparkSession

from stedi_assets.assets.accelerometer_trusted import (
    accelerometer_users,
    build_accelerometer_trusted,
)
from stedi_assets.assets.customer_trusted import build_customer_trusted
from stedi_assets.assets.customers_curated import ambiguous_serials, build_customers_curated
from stedi_assets.assets.machine_learning_curated import (
    MACHINE_LEARNING_COLUMNS,
    build_machine_learning_curated,
    cross_customer_rows,
)
from stedi_assets.assets.step_trainer_trusted import build_step_trainer_trusted
from stedi_assets.rules import duplicate_keys
from stedi_assets_tests.rows import DAY, T0, accelerometer, collect_set, customers, step_trainer

ALICE, BOB, CAROL = "alice@test.com", "bob@test.com", "carol@test.com"
# The direct identifiers, written here rather than imported from the code under test.
IDENTIFIER_COLUMNS = {"customerName", "email", "user", "phone", "birthDay"}


# --- customer_trusted -------------------------------------------------------------------


def test_customer_trusted_keeps_only_customers_with_research_consent(spark: SparkSession) -> None:
    landing = customers(
        spark,
        {"email": ALICE, "serialNumber": "s-a", "shareWithResearchAsOfDate": T0},
        {"email": BOB, "serialNumber": "s-b", "shareWithPublicAsOfDate": T0},  # public only
    )
    assert collect_set(build_customer_trusted(landing), "email") == {(ALICE,)}


def test_customer_trusted_latest_record_wins_so_a_withdrawal_removes_the_customer(
    spark: SparkSession,
) -> None:
    landing = customers(
        spark,
        {
            "email": ALICE,
            "serialNumber": "s-a",
            "lastUpdateDate": T0,
            "shareWithResearchAsOfDate": T0,
        },
        {"email": ALICE, "serialNumber": "s-a", "lastUpdateDate": T0 + DAY},  # withdrew
        {"email": BOB, "serialNumber": "s-b", "lastUpdateDate": T0},
        {
            "email": BOB,
            "serialNumber": "s-b2",
            "lastUpdateDate": T0 + DAY,
            "shareWithResearchAsOfDate": T0,
        },
    )
    trusted = build_customer_trusted(landing)
    assert collect_set(trusted, "email", "serialNumber") == {(BOB, "s-b2")}


def test_customer_trusted_on_a_tie_assumes_no_consent(spark: SparkSession) -> None:
    landing = customers(
        spark,
        {
            "email": ALICE,
            "serialNumber": "s-a",
            "lastUpdateDate": T0,
            "shareWithResearchAsOfDate": T0,
        },
        {"email": ALICE, "serialNumber": "s-a", "lastUpdateDate": T0},
    )
    assert build_customer_trusted(landing).count() == 0


def test_customer_trusted_drops_records_without_email(spark: SparkSession) -> None:
    landing = customers(
        spark, {"email": None, "serialNumber": "s-x", "shareWithResearchAsOfDate": T0}
    )
    assert build_customer_trusted(landing).count() == 0


# --- accelerometer_trusted ----------------------------------------------------------------


def _registered(spark: SparkSession):
    return customers(
        spark,
        {"email": ALICE, "serialNumber": "s-a", "shareWithResearchAsOfDate": T0},
        {"email": BOB, "serialNumber": "s-b", "shareWithResearchAsOfDate": T0},
        {"email": CAROL, "serialNumber": "s-c"},  # never consented
    )


def _consenting(spark: SparkSession):
    return build_customer_trusted(_registered(spark))


@pytest.mark.parametrize("privacy", [True, False])
def test_accelerometer_trusted_only_consenting_users_accelerometer_columns(
    spark: SparkSession, privacy: bool
) -> None:
    readings = accelerometer(spark, (ALICE, T0 + 1, 1.0, 0.0, 0.0), (CAROL, T0 + 1, 1.0, 0.0, 0.0))
    trusted = build_accelerometer_trusted(readings, _consenting(spark), privacy=privacy)
    assert trusted.columns == ["user", "timestamp", "x", "y", "z"]
    assert collect_set(trusted, "user") == {(ALICE,)}


def test_accelerometer_trusted_privacy_drops_readings_before_consent(spark: SparkSession) -> None:
    readings = accelerometer(spark, (ALICE, T0 - 1, 1.0, 0.0, 0.0), (ALICE, T0, 2.0, 0.0, 0.0))
    private = build_accelerometer_trusted(readings, _consenting(spark), privacy=True)
    rubric = build_accelerometer_trusted(readings, _consenting(spark), privacy=False)
    assert collect_set(private, "timestamp") == {(T0,)}  # at consent counts as after
    assert collect_set(rubric, "timestamp") == {(T0 - 1,), (T0,)}


@pytest.mark.parametrize("privacy", [True, False])
def test_accelerometer_trusted_keeps_exact_duplicates_once(
    spark: SparkSession, privacy: bool
) -> None:
    readings = accelerometer(
        spark,
        (ALICE, T0 + 5, 1.0, 0.0, 0.0),
        (ALICE, T0 + 5, 1.0, 0.0, 0.0),  # the same file uploaded twice
        (ALICE, T0 + 5, 0.0, 1.0, 0.0),  # same instant, other values: a distinct reading
    )
    assert build_accelerometer_trusted(readings, _consenting(spark), privacy=privacy).count() == 2


@pytest.mark.parametrize("privacy", [True, False])
def test_accelerometer_users_are_exactly_the_users_of_accelerometer_trusted(
    spark: SparkSession, privacy: bool
) -> None:
    """customers_curated finds its readers without accelerometer_trusted's de-duplication:
    the same e-mails, whatever the readings."""
    readings = accelerometer(
        spark,
        (ALICE, T0 + 5, 1.0, 0.0, 0.0),
        (ALICE, T0 + 5, 1.0, 0.0, 0.0),  # a duplicate
        (BOB, T0 - 1, 1.0, 0.0, 0.0),  # before consent only (BOB consented at T0)
        (CAROL, T0 + 1, 1.0, 0.0, 0.0),  # no consent
        (" Alice@Test.com ", T0 + 6, 1.0, 0.0, 0.0),  # the same customer, written otherwise
    )
    consenting = _consenting(spark)
    users = accelerometer_users(readings, consenting, privacy=privacy)
    trusted = build_accelerometer_trusted(readings, consenting, privacy=privacy)
    assert users.columns == ["user"]
    assert collect_set(users, "user") == collect_set(trusted, "user")
    assert users.count() == len(collect_set(users, "user"))  # one row per e-mail
    assert collect_set(users, "user") == ({(ALICE,)} if privacy else {(ALICE,), (BOB,)})


# --- customers_curated --------------------------------------------------------------------


def test_customers_curated_only_customers_with_accelerometer_readings(spark: SparkSession) -> None:
    readings = accelerometer(spark, (ALICE, T0 + 1, 1.0, 0.0, 0.0), (ALICE, T0 + 2, 1.0, 0.0, 0.0))
    curated = build_customers_curated(
        _consenting(spark), readings, _registered(spark), privacy=True
    )
    assert collect_set(curated, "email") == {(ALICE,)}
    assert curated.count() == 1  # one row per customer, however many readings


def _sharing_serial(spark: SparkSession):
    return customers(
        spark,
        {"email": ALICE, "serialNumber": "shared", "shareWithResearchAsOfDate": T0},
        {"email": BOB, "serialNumber": "shared", "shareWithResearchAsOfDate": T0},
        {"email": CAROL, "serialNumber": "s-c", "shareWithResearchAsOfDate": T0},
    )


def test_customers_curated_privacy_leaves_out_ambiguous_serials(spark: SparkSession) -> None:
    registered = _sharing_serial(spark)
    trusted = build_customer_trusted(registered)
    readings = accelerometer(spark, *[(who, T0 + 1, 1.0, 0.0, 0.0) for who in (ALICE, BOB, CAROL)])
    private = build_customers_curated(trusted, readings, registered, privacy=True)
    rubric = build_customers_curated(trusted, readings, registered, privacy=False)
    assert collect_set(private, "email") == {(CAROL,)}
    assert collect_set(rubric, "email") == {(ALICE,), (BOB,), (CAROL,)}
    assert collect_set(ambiguous_serials(rubric), "serialNumber", "holders") == {("shared", 2)}


def test_customers_curated_privacy_leaves_out_a_serial_shared_with_a_non_consenting_customer(
    spark: SparkSession,
) -> None:
    # Bob never consented, but his registered device is Alice's serial: its step readings may
    # be his. Carol's serial was Alice's only in an older record, which no longer counts.
    registered = customers(
        spark,
        {"email": ALICE, "serialNumber": "shared", "shareWithResearchAsOfDate": T0},
        {"email": BOB, "serialNumber": "shared"},
        {"email": CAROL, "serialNumber": "s-a", "shareWithResearchAsOfDate": T0},
        {"email": ALICE, "serialNumber": "s-a", "lastUpdateDate": T0 - 20 * DAY},
    )
    trusted = build_customer_trusted(registered)
    readings = accelerometer(spark, (ALICE, T0 + 1, 1.0, 0.0, 0.0), (CAROL, T0 + 1, 1.0, 0.0, 0.0))
    private = build_customers_curated(trusted, readings, registered, privacy=True)
    rubric = build_customers_curated(trusted, readings, registered, privacy=False)
    assert collect_set(private, "email") == {(CAROL,)}
    assert collect_set(rubric, "email") == {(ALICE,), (CAROL,)}


# --- step_trainer_trusted ------------------------------------------------------------------


def _curated(spark: SparkSession):
    trusted = _consenting(spark)
    readings = accelerometer(spark, (ALICE, T0 + 1, 1.0, 0.0, 0.0), (BOB, T0 + 1, 1.0, 0.0, 0.0))
    return build_customers_curated(trusted, readings, _registered(spark), privacy=True)


@pytest.mark.parametrize("privacy", [True, False])
def test_step_trainer_trusted_only_serials_of_curated_customers(
    spark: SparkSession, privacy: bool
) -> None:
    readings = step_trainer(spark, (T0 + 1, "s-a", 100), (T0 + 1, "s-c", 100), (T0 + 1, "s-x", 1))
    trusted = build_step_trainer_trusted(readings, _curated(spark), privacy=privacy)
    assert trusted.columns == ["sensorReadingTime", "serialNumber", "distanceFromObject"]
    assert collect_set(trusted, "serialNumber") == {("s-a",)}


def test_step_trainer_trusted_privacy_drops_readings_before_consent(spark: SparkSession) -> None:
    readings = step_trainer(spark, (T0 - DAY, "s-a", 100), (T0 + 1, "s-a", 120))
    private = build_step_trainer_trusted(readings, _curated(spark), privacy=True)
    rubric = build_step_trainer_trusted(readings, _curated(spark), privacy=False)
    assert collect_set(private, "sensorReadingTime") == {(T0 + 1,)}
    assert rubric.count() == 2


@pytest.mark.parametrize("privacy", [True, False])
def test_step_trainer_trusted_keeps_exact_duplicates_once(
    spark: SparkSession, privacy: bool
) -> None:
    readings = step_trainer(spark, (T0 + 1, "s-a", 100), (T0 + 1, "s-a", 100))
    assert build_step_trainer_trusted(readings, _curated(spark), privacy=privacy).count() == 1


# --- machine_learning_curated --------------------------------------------------------------


def _ml_inputs(spark: SparkSession):
    """Alice's and Bob's phones both read at T0+1; each has their own Step Trainer."""
    accel = build_accelerometer_trusted(
        accelerometer(spark, (ALICE, T0 + 1, 1.0, 0.0, 0.0), (BOB, T0 + 1, 0.0, 0.0, 9.0)),
        _consenting(spark),
        privacy=True,
    )
    curated = build_customers_curated(_consenting(spark), accel, _registered(spark), privacy=True)
    steps = build_step_trainer_trusted(
        step_trainer(spark, (T0 + 1, "s-a", 100), (T0 + 1, "s-b", 200)), curated, privacy=True
    )
    return steps, accel, curated


def test_machine_learning_privacy_pairs_only_a_customers_own_devices(spark: SparkSession) -> None:
    steps, accel, curated = _ml_inputs(spark)
    private = build_machine_learning_curated(steps, accel, curated, privacy=True)
    assert collect_set(private, "serialNumber", "x", "z") == {("s-a", 1.0, 0.0), ("s-b", 0.0, 9.0)}
    assert cross_customer_rows(private, accel, curated) == 0


def test_machine_learning_udacity_join_on_time_alone_crosses_customers(spark: SparkSession) -> None:
    steps, accel, curated = _ml_inputs(spark)
    rubric = build_machine_learning_curated(steps, accel, curated, privacy=False)
    assert rubric.count() == 4  # each Step Trainer paired with both phones
    assert cross_customer_rows(rubric, accel, curated) == 2


@pytest.mark.parametrize("privacy", [True, False])
def test_machine_learning_curated_has_no_direct_identifier(
    spark: SparkSession, privacy: bool
) -> None:
    steps, accel, curated = _ml_inputs(spark)
    table = build_machine_learning_curated(steps, accel, curated, privacy=privacy)
    assert tuple(table.columns) == MACHINE_LEARNING_COLUMNS
    assert not IDENTIFIER_COLUMNS.intersection(table.columns)


# --- check helpers ---------------------------------------------------------------------------


def test_duplicate_keys_counts_rows_beyond_the_first(spark: SparkSession) -> None:
    readings = step_trainer(spark, (1, "s", 1), (1, "s", 1), (1, "s", 1), (2, "s", 1))
    assert duplicate_keys(readings) == 2
    assert duplicate_keys(readings, "serialNumber") == 3
