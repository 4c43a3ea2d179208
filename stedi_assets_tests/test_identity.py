"""A customer is one person however their e-mail (or serial number) is written: the rules and
the consent audit normalize identities alike, each by its own code."""

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from stedi_assets.assets.accelerometer_trusted import build_accelerometer_trusted
from stedi_assets.assets.consent_audit import audit_identity, consenting_customers
from stedi_assets.assets.customer_trusted import build_customer_trusted
from stedi_assets.assets.step_trainer_trusted import build_step_trainer_trusted
from stedi_assets.identity import identity
from stedi_assets_tests.rows import DAY, T0, accelerometer, collect_set, customers, step_trainer

BEN = "ben.khatib@test.com"
# The white space an identity is trimmed of, as the README states it, written here.
WHITE_SPACE = {
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
}


def test_both_implementations_trim_exactly_the_stated_white_space_of_every_character(
    spark: SparkSession,
) -> None:
    codes = [c for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]
    wrapped = spark.createDataFrame([(c, f"{chr(c)}Ben.Khatib@Test.com{chr(c)}") for c in codes])
    wrapped = wrapped.toDF("code", "email").select(
        "code",
        identity(F.col("email")).alias("rules"),
        audit_identity(F.col("email")).alias("audit"),
    )
    assert wrapped.where(~F.col("rules").eqNullSafe(F.col("audit"))).count() == 0
    trimmed = wrapped.where(F.col("rules") == BEN).select("code").collect()
    assert {row.code for row in trimmed} == WHITE_SPACE


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (" ben.khatib@TEST.com ", BEN),
        ("\tBEN.KHATIB@test.com\r\n", BEN),
        ("\u00a0\u2003ben.khatib@test.com\u3000", BEN),
        ("\ufeffBen.Khatib@Test.Com\u200b", BEN),
        ("ben khatib@test.com", "ben khatib@test.com"),  # inner spaces stay
        ("   ", None),  # nothing left: nobody
        ("", None),
        (None, None),
    ],
)
def test_identity_of_tricky_emails(
    spark: SparkSession, written: str | None, expected: str | None
) -> None:
    row = (
        spark.createDataFrame([(written,)], "email string")
        .select(identity(F.col("email")).alias("rules"), audit_identity(F.col("email")).alias("a"))
        .first()
    )
    assert (row.rules, row.a) == (expected, expected)


def _ben_withdraws_as(spark: SparkSession, written: str):  # -> DataFrame
    return customers(
        spark,
        {
            "email": BEN,
            "serialNumber": "S-1",
            "lastUpdateDate": T0,
            "shareWithResearchAsOfDate": T0,
        },
        {"email": written, "serialNumber": "s-1", "lastUpdateDate": T0 + DAY},
    )


@pytest.mark.parametrize("written", [" ben.khatib@TEST.com ", "BEN.KHATIB@TEST.COM\u00a0"])
def test_a_withdrawal_written_otherwise_withdraws_the_customer_in_rules_and_audit(
    spark: SparkSession, written: str
) -> None:
    landing = _ben_withdraws_as(spark, written)
    assert build_customer_trusted(landing).count() == 0
    assert consenting_customers(landing).count() == 0


def test_the_rules_and_the_audit_agree_on_who_consents_among_spellings(
    spark: SparkSession,
) -> None:
    landing = customers(
        spark,
        # Alice consents as written one way, and her later record in another keeps consent.
        {"email": " Alice@Test.com", "serialNumber": "S-A", "shareWithResearchAsOfDate": T0},
        {
            "email": "alice@test.com\t",
            "serialNumber": "s-a ",
            "lastUpdateDate": T0 + DAY,
            "shareWithResearchAsOfDate": T0,
        },
        # Bob's older record, spelled in capitals, lacks consent; his latest has it.
        {"email": "BOB@TEST.COM", "serialNumber": "s-b", "lastUpdateDate": T0 - DAY},
        {
            "email": "bob@test.com",
            "serialNumber": "s-b",
            "lastUpdateDate": T0,
            "shareWithResearchAsOfDate": T0,
        },
        # White space only: nobody's record.
        {"email": "\u2002 ", "serialNumber": "s-x", "shareWithResearchAsOfDate": T0},
    )
    expected = {("alice@test.com", "s-a"), ("bob@test.com", "s-b")}
    assert collect_set(build_customer_trusted(landing), "email", "serialNumber") == expected
    assert collect_set(consenting_customers(landing), "email", "serialNumber") == expected


def test_readings_spelled_otherwise_belong_to_their_customer(spark: SparkSession) -> None:
    trusted = build_customer_trusted(
        customers(
            spark,
            {"email": BEN, "serialNumber": "S-1", "shareWithResearchAsOfDate": T0},
        )
    )
    readings = accelerometer(
        spark, (" BEN.khatib@test.com", T0 + 1, 0.1, 0.2, 0.3), (BEN, T0 + 2, 0.1, 0.2, 0.3)
    )
    accel = build_accelerometer_trusted(readings, trusted, privacy=True)
    assert collect_set(accel, "user", "timestamp") == {(BEN, T0 + 1), (BEN, T0 + 2)}
    steps = step_trainer(spark, (T0 + 1, " s-1", 40), (T0 + 2, "S-1", 41))
    owned = build_step_trainer_trusted(steps, trusted, privacy=True)
    assert collect_set(owned, "serialNumber", "sensorReadingTime") == {
        ("s-1", T0 + 1),
        ("s-1", T0 + 2),
    }
