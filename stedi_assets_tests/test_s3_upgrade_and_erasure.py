"""An s3:// lake of earlier versions (plain Parquet, Glue tables of the same names) is upgraded
in place by its first run; a withdrawal then erases the customer from every object under the
lake, the upgraded history included. Against moto's server, on simulated landing data."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from stedi_assets.assets.customer_trusted import build_customer_trusted
from stedi_assets.partitions import utc_day
from stedi_assets.runner import run_lakehouse
from stedi_assets.storage import iceberg
from stedi_assets.storage.landing_reads import read_landing
from stedi_assets.storage.layout import table_spec
from stedi_assets.storage.s3 import apply_hadoop_options, s3a_spark_config
from stedi_assets_tests.aws_fixtures import require_s3a_jars
from stedi_assets_tests.lake_files import files_holding
from stedi_assets_tests.rows import DAY, T0, accelerometer
from stedi_assets_tests.test_s3_glue import s3_settings

BUCKET = "stedi-legacy-test"
LAKE = f"s3://{BUCKET}/lake"
DATABASE = "stedi_legacy"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


@dataclass(frozen=True)
class Legacy:
    email: str  # the customer the legacy tables hold
    serial: str
    catalog: iceberg.CatalogConfig


def _keys(prefix: str) -> list[str]:
    pages = (
        boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    )
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _legacy_glue_table(name: str, location: str, partitioned: bool) -> None:
    """A Glue table as earlier versions registered it: external Parquet, not Iceberg."""
    boto3.client("glue").create_table(
        DatabaseName=DATABASE,
        TableInput={
            "Name": name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
            "PartitionKeys": [{"Name": "day", "Type": "string"}] if partitioned else [],
            "StorageDescriptor": {
                "Columns": [{"Name": "email", "Type": "string"}],
                "Location": location,
                "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE},
            },
        },
    )


@pytest.fixture(scope="module")
def legacy(spark: SparkSession, simulated_landing: Path, moto_endpoint: str) -> Iterator[Legacy]:
    """The simulated landing in S3, with customer_trusted and accelerometer_trusted as earlier
    versions left them; then the first run of this version."""
    require_s3a_jars()
    apply_hadoop_options(spark, s3a_spark_config())
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for path in sorted(p for p in simulated_landing.rglob("*") if p.is_file()):
        s3.upload_file(str(path), BUCKET, f"lake/{path.relative_to(simulated_landing).as_posix()}")
    landing = read_landing(spark, str(simulated_landing), table_spec("customer_landing"))
    customer = build_customer_trusted(landing).orderBy("email").first()
    spark.createDataFrame([customer]).write.parquet(f"s3a://{BUCKET}/lake/customer/trusted/")
    # On days of the landing data (2022-06-18 and -19), which every all-days run rewrites.
    readings = accelerometer(
        spark,
        (customer.email, T0 + DAY, 0.1, 0.2, 0.3),
        (customer.email, T0 + 2 * DAY, 0.1, 0.2, 0.3),
    ).withColumn("day", utc_day(F.col("timestamp")))
    readings.write.partitionBy("day").parquet(f"s3a://{BUCKET}/lake/accelerometer/trusted/")
    # An interrupted swap of those versions left a copy of a table behind.
    s3.put_object(Bucket=BUCKET, Key="lake/_staging/customer/trusted/part-0.parquet", Body=b"x")
    boto3.client("glue").create_database(DatabaseInput={"Name": DATABASE})
    _legacy_glue_table("customer_trusted", f"{LAKE}/customer/trusted", partitioned=False)
    _legacy_glue_table("accelerometer_trusted", f"{LAKE}/accelerometer/trusted", partitioned=True)

    summary = run_lakehouse(s3_settings(LAKE, database=DATABASE), "privacy")

    assert summary.success, summary.failures
    catalog = iceberg.CatalogConfig(LAKE, DATABASE)
    catalog.register(spark)
    yield Legacy(customer.email, customer.serialNumber, catalog)


def test_an_s3_lake_of_earlier_versions_is_upgraded_in_place_without_losing_rows(
    spark: SparkSession, legacy: Legacy
) -> None:
    glue = boto3.client("glue")
    for table, legacy_rows in (("customer_trusted", 1), ("accelerometer_trusted", 2)):
        found = glue.get_table(DatabaseName=DATABASE, Name=table)["Table"]
        assert found["Parameters"]["table_type"] == "ICEBERG", table
        first, latest = iceberg.history(spark, legacy.catalog, table)  # upgrade, then the run
        assert first.operation == "append" and first.total_records == legacy_rows, table
        assert latest.total_records > 0
        # Only Iceberg's folders remain at the table's location.
        prefix = f"lake/{table_spec(table).relative_path}/"
        folders = {key.removeprefix(prefix).split("/")[0] for key in _keys(prefix)}
        assert folders == {"data", "metadata"}, table
    assert _keys("lake/_staging/") == []


def test_a_withdrawal_on_s3_leaves_no_object_holding_the_customer(
    spark: SparkSession, legacy: Legacy, tmp_path: Path
) -> None:
    record = (
        spark.table(legacy.catalog.identifier("customer_trusted"))
        .where(F.col("email") == legacy.email)
        .first()
        .asDict()
    )
    withdrawal = {k: v for k, v in record.items() if not k.startswith("shareWith")}
    withdrawal["lastUpdateDate"] += 1
    body = spark.createDataFrame([withdrawal]).toJSON().first()
    boto3.client("s3").put_object(
        Bucket=BUCKET, Key="lake/customer/landing/withdrawal.json", Body=body.encode() + b"\n"
    )

    summary = run_lakehouse(s3_settings(LAKE, database=DATABASE), "privacy")

    assert summary.success, summary.failures
    trusted = spark.table(legacy.catalog.identifier("customer_trusted"))
    assert trusted.where(F.col("email") == legacy.email).count() == 0
    # Every object below the lake but landing, read format by format: data files, manifests,
    # metadata files. The legacy snapshot held the customer too; it is expired.
    copy = tmp_path / "lake"
    s3 = boto3.client("s3")
    for key in _keys("lake/"):
        target = copy / key.removeprefix("lake/")
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(BUCKET, key, str(target))
    assert files_holding(copy, legacy.email, legacy.serial) == []
    # Nor does the Glue catalog.
    tables = boto3.client("glue").get_tables(DatabaseName=DATABASE)["TableList"]
    assert legacy.email not in str(tables)
