"""Tiny hand-made landing DataFrames for rule tests, typed by the DDL in ``sql/``."""

from pyspark.sql import DataFrame, SparkSession

from stedi_assets.storage.ddl import landing_ddl

DAY = 86_400_000
T0 = 1_655_500_000_000  # 2022-06-17T21:06:40Z, an arbitrary instant near the real data


def customers(spark: SparkSession, *records: dict) -> DataFrame:
    """Customer landing rows; unspecified fields take harmless defaults."""
    defaults = {
        "customerName": "Some One",
        "phone": "8015551212",
        "birthDay": "1990-01-01",
        "registrationDate": T0 - 10 * DAY,
        "lastUpdateDate": T0 - 10 * DAY,
        "shareWithResearchAsOfDate": None,
        "shareWithPublicAsOfDate": None,
        "shareWithFriendsAsOfDate": None,
    }
    return _frame(spark, "customer_landing", [{**defaults, **r} for r in records])


def accelerometer(spark: SparkSession, *readings: tuple) -> DataFrame:
    """(user, timestamp, x, y, z) tuples."""
    keys = ("user", "timestamp", "x", "y", "z")
    return _frame(
        spark, "accelerometer_landing", [dict(zip(keys, r, strict=True)) for r in readings]
    )


def step_trainer(spark: SparkSession, *readings: tuple) -> DataFrame:
    """(sensorReadingTime, serialNumber, distanceFromObject) tuples."""
    keys = ("sensorReadingTime", "serialNumber", "distanceFromObject")
    return _frame(
        spark, "step_trainer_landing", [dict(zip(keys, r, strict=True)) for r in readings]
    )


def _frame(spark: SparkSession, table: str, records: list[dict]) -> DataFrame:
    schema = landing_ddl(table).spark_schema()
    return spark.createDataFrame([tuple(r.get(f.name) for f in schema) for r in records], schema)


def collect_set(df: DataFrame, *columns: str) -> set[tuple]:
    """The rows of a tiny test frame as a set of tuples (test data only)."""
    return {tuple(row) for row in df.select(*columns).collect()}
