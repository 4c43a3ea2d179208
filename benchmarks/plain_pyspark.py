"""The privacy profile's rules as one plain PySpark script: no Dagster, no checks, no catalog,
no metadata. The benchmark's baseline for what the rules alone cost on Spark.

Reads ``<lake>/<entity>/landing/`` (day folders included) and writes the five tables as
Parquet at the project's layout, the reading tables partitioned by their UTC day as a user writing
them by hand would (``customer/trusted``, ``accelerometer/trusted``, ``customer/curated``,
``step_trainer/trusted``, ``machine_learning/curated``). Same Spark settings as the project:
``local[*]``, ``STEDI_SPARK_DRIVER_MEMORY`` (2g), ``STEDI_SHUFFLE_PARTITIONS`` (4).

    python benchmarks/plain_pyspark.py --lake LAKE
"""

import argparse
import os
import sys

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

# The landing DDL (sql/*.sql) as Spark schema strings: a plain script would hard-code them.
CUSTOMER_SCHEMA = (
    "customerName string, email string, phone string, birthDay string, serialNumber string, "
    "registrationDate bigint, lastUpdateDate bigint, shareWithResearchAsOfDate bigint, "
    "shareWithPublicAsOfDate bigint, shareWithFriendsAsOfDate bigint"
)
ACCELEROMETER_SCHEMA = "user string, timestamp bigint, x double, y double, z double"
STEP_TRAINER_SCHEMA = "sensorReadingTime bigint, serialNumber string, distanceFromObject int"
CONSENT = "shareWithResearchAsOfDate"


def session() -> SparkSession:
    """The project's Spark settings (settings.py), so only the orchestration differs."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    for key, value in {
        "spark.master": os.environ.get("STEDI_SPARK_MASTER", "local[*]"),
        "spark.app.name": "plain-pyspark-privacy",
        "spark.driver.memory": os.environ.get("STEDI_SPARK_DRIVER_MEMORY", "2g"),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": os.environ.get("STEDI_SHUFFLE_PARTITIONS", "4"),
        "spark.sql.session.timeZone": "UTC",
    }.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def run(spark: SparkSession, lake: str) -> None:
    def landing(entity: str, schema: str) -> DataFrame:
        return (
            spark.read.schema(schema)
            .option("recursiveFileLookup", "true")
            .json(f"{lake}/{entity}/landing/")
        )

    def publish(df: DataFrame, relative: str, time_column: str | None = None) -> DataFrame:
        # Downstream steps read the written table back, as a chain of Glue jobs would, instead
        # of recomputing its lineage.
        writer = df.write.mode("overwrite")
        if time_column:
            day = F.to_date(F.timestamp_millis(F.col(time_column)))
            writer = df.withColumn("day", day).write.mode("overwrite").partitionBy("day")
        writer.parquet(f"{lake}/{relative}")
        return spark.read.parquet(f"{lake}/{relative}").drop("day")

    # customer_trusted: latest record per e-mail (tie: no consent wins), consent present.
    newest_first = Window.partitionBy("email").orderBy(
        F.col("lastUpdateDate").desc_nulls_last(), F.col(CONSENT).asc_nulls_first()
    )
    customers = landing("customer", CUSTOMER_SCHEMA)
    customer_trusted = publish(
        customers.where(F.col("email").isNotNull())
        .withColumn("_recency", F.row_number().over(newest_first))
        .where((F.col("_recency") == 1) & F.col(CONSENT).isNotNull())
        .drop("_recency"),
        "customer/trusted",
    )

    # accelerometer_trusted: exact duplicates once, readings of consenting e-mails at or after
    # their consent.
    consent_by_email = customer_trusted.select(F.col("email").alias("user"), CONSENT)
    accelerometer_trusted = publish(
        landing("accelerometer", ACCELEROMETER_SCHEMA)
        .where(F.col("user").isNotNull() & F.col("timestamp").isNotNull())
        .dropDuplicates()
        .join(consent_by_email, "user")
        .where(F.col("timestamp") >= F.col(CONSENT))
        .select("user", "timestamp", "x", "y", "z"),
        "accelerometer/trusted",
        "timestamp",
    )

    # customers_curated: consenting customers with a trusted reading, minus every customer
    # whose serial number is held by more than one of them.
    users = accelerometer_trusted.select(F.col("user").alias("email")).distinct()
    with_readings = customer_trusted.join(users, "email", "left_semi")
    ambiguous = (
        with_readings.groupBy("serialNumber")
        .agg(F.countDistinct("email").alias("holders"))
        .where(F.col("holders") > 1)
    )
    customers_curated = publish(
        with_readings.join(ambiguous, "serialNumber", "left_anti").select(
            *customer_trusted.columns
        ),
        "customer/curated",
    )

    # step_trainer_trusted: exact duplicates once, readings of curated serials at or after the
    # owner's consent.
    consent_by_serial = customers_curated.select("serialNumber", CONSENT)
    step_trainer_trusted = publish(
        landing("step_trainer", STEP_TRAINER_SCHEMA)
        .where(F.col("sensorReadingTime").isNotNull() & F.col("serialNumber").isNotNull())
        .dropDuplicates()
        .join(consent_by_serial, "serialNumber")
        .where(F.col("sensorReadingTime") >= F.col(CONSENT))
        .select("sensorReadingTime", "serialNumber", "distanceFromObject"),
        "step_trainer/trusted",
        "sensorReadingTime",
    )

    # machine_learning_curated: a customer's own step and phone readings at the same ms.
    owners = customers_curated.select("serialNumber", F.col("email").alias("user"))
    publish(
        step_trainer_trusted.join(owners, "serialNumber")
        .join(accelerometer_trusted, "user")
        .where(F.col("sensorReadingTime") == F.col("timestamp"))
        .select("sensorReadingTime", "serialNumber", "distanceFromObject", "x", "y", "z"),
        "machine_learning/curated",
        "sensorReadingTime",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True, help="lake root with the landing folders")
    args = parser.parse_args()
    spark = session()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        run(spark, os.path.abspath(args.lake))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
