"""The lakehouse on an s3:// lake with the Glue catalog, against moto's server over HTTP.

Spark reads and writes the lake through S3A (the cached jars); Glue, S3 and Athena calls go to
the session's moto server (see ``aws_fixtures``). The whole graph runs twice on the reference
landing data: the rubric counts, Glue's tables against the Parquet written, and a re-run that
leaves the catalog alone.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from dagster_aws.athena import AthenaClientResource
from pyspark.sql import SparkSession
from stedi_assets.storage.catalog import CatalogColumn, CatalogPartition, CatalogTable
from stedi_assets.storage.spark_tables import hive_type, spark_uri

from stedi_assets.aws.athena import run_athena_query
from stedi_assets.aws.clients import AwsClientsResource
from stedi_assets.runner import RunSummary, run_lakehouse
from stedi_assets.settings import Settings, build_catalog
from stedi_assets.storage import s3 as s3_module
from stedi_assets.storage.ddl import landing_ddl
from stedi_assets.storage.glue import JSON_SERDE, PARQUET_SERDE, TEXT_INPUT, GlueCatalog
from stedi_assets.storage.layout import TABLES
from stedi_assets_tests.aws_fixtures import REGION, require_s3a_jars
from stedi_assets_tests.conftest import reference_data
from stedi_assets_tests.test_lakehouse import RUBRIC_COUNTS

BUCKET = "stedi-lake-test"
LAKE = f"s3://{BUCKET}/lake"


def s3_settings(lake: str = LAKE, database: str = "stedi") -> Settings:
    return Settings(lake=lake, spark_master="local[2]", shuffle_partitions=2, database=database)


def upload_reference_landing(bucket: str, prefix: str) -> int:
    """The reference landing files to ``s3://bucket/prefix/<entity>/landing/…``."""
    client = s3_module.s3_resource().get_client()
    source = reference_data()
    files = sorted(p for p in source.rglob("*.json") if "landing" in p.parts)
    for path in files:
        client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(source).as_posix()}")
    return len(files)


@dataclass(frozen=True)
class S3Runs:
    first: RunSummary
    second: RunSummary
    catalog_before_rerun: list[dict[str, Any]]
    catalog_after_rerun: list[dict[str, Any]]
    partitions_before_rerun: dict[str, list[dict[str, Any]]]
    partitions_after_rerun: dict[str, list[dict[str, Any]]]
    first_seconds: float
    second_seconds: float


@pytest.fixture(scope="module")
def s3_runs(spark: SparkSession, moto_endpoint: str) -> Iterator[S3Runs]:
    """The whole graph twice on the reference data in S3 (one upload, two runs)."""
    import time

    require_s3a_jars()
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    assert upload_reference_landing(BUCKET, "lake") == 13
    glue = boto3.client("glue")

    started = time.monotonic()
    first = run_lakehouse(s3_settings(), "udacity")
    first_seconds = time.monotonic() - started
    assert first.success, first.failures
    before = glue.get_tables(DatabaseName="stedi")["TableList"]
    partitions_before = _partitions(glue, before)

    started = time.monotonic()
    second = run_lakehouse(s3_settings(), "udacity")
    second_seconds = time.monotonic() - started
    after = glue.get_tables(DatabaseName="stedi")["TableList"]
    yield S3Runs(
        first,
        second,
        before,
        after,
        partitions_before,
        _partitions(glue, after),
        first_seconds,
        second_seconds,
    )


def _partitions(glue: Any, tables: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Every partitioned table's partitions, as Glue returns them."""
    return {
        t["Name"]: glue.get_partitions(DatabaseName="stedi", TableName=t["Name"])["Partitions"]
        for t in tables
        if t.get("PartitionKeys")
    }


def test_the_whole_graph_on_s3_gives_the_rubric_counts(s3_runs: S3Runs) -> None:
    assert s3_runs.first.row_counts == RUBRIC_COUNTS
    assert s3_runs.second.success, s3_runs.second.failures
    assert s3_runs.second.row_counts == RUBRIC_COUNTS
    print(f"s3 runs: {s3_runs.first_seconds:.1f}s, re-run {s3_runs.second_seconds:.1f}s")


def test_spark_wrote_the_parquet_to_s3_through_s3a(spark: SparkSession, s3_runs: S3Runs) -> None:
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="lake/customer/trusted/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert any(k.endswith(".parquet") for k in keys), keys
    # No data is left in staging once every table is swapped into place (S3A may keep empty
    # directory markers, keys ending in "/").
    staging = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="lake/_staging/")
    assert [o["Key"] for o in staging.get("Contents", []) if not o["Key"].endswith("/")] == []
    assert spark.read.parquet(f"s3a://{BUCKET}/lake/customer/trusted/").count() == 482


def test_glue_holds_all_eight_tables_like_the_parquet_written(
    spark: SparkSession, s3_runs: S3Runs
) -> None:
    tables = {t["Name"]: t for t in s3_runs.catalog_after_rerun}
    assert set(RUBRIC_COUNTS) <= set(tables)
    for name in RUBRIC_COUNTS:
        spec, table = TABLES[name], tables[name]
        sd = table["StorageDescriptor"]
        assert sd["Location"] == spec.location(LAKE), name
        assert table["TableType"] == "EXTERNAL_TABLE"
        columns = [(c["Name"], c["Type"]) for c in sd["Columns"]]
        keys = [(c["Name"], c["Type"]) for c in table.get("PartitionKeys", [])]
        if spec.is_landing:
            ddl = landing_ddl(name)
            assert columns == [(c.name, c.hive_type) for c in ddl.columns], name
            assert keys == []
            assert sd["SerdeInfo"]["SerializationLibrary"] == JSON_SERDE
            assert sd["SerdeInfo"]["Parameters"] == {
                "ignore.malformed.json": "FALSE",
                "case.insensitive": "FALSE",
            }
            assert sd["InputFormat"] == TEXT_INPUT
            assert table["Parameters"]["classification"] == "json"
            continue
        # The columns (then the partition keys, which Spark reads from the folder names) are
        # the Parquet's own schema, read back from S3.
        written = spark.read.parquet(spark_uri(sd["Location"]))
        assert columns + keys == [
            (f.name, hive_type(f.dataType.simpleString())) for f in written.schema
        ], name
        assert sd["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
        assert sd["InputFormat"].endswith("MapredParquetInputFormat")
        assert table["Parameters"]["classification"] == "parquet"
        if keys:  # every partition written is registered, at its folder
            key = keys[0][0]
            partitions = s3_runs.partitions_after_rerun[name]
            days = {row[0] for row in written.select(key).distinct().collect()}
            assert {p["Values"][0] for p in partitions} == days, name
            for partition in partitions:
                location = partition["StorageDescriptor"]["Location"]
                assert location == f"{sd['Location']}{key}={partition['Values'][0]}/"


def test_a_rerun_leaves_the_catalog_unchanged(s3_runs: S3Runs) -> None:
    def identity(tables: list[dict[str, Any]]) -> dict[str, Any]:
        return {t["Name"]: t for t in tables}

    before, after = identity(s3_runs.catalog_before_rerun), identity(s3_runs.catalog_after_rerun)
    assert before == after  # every field, VersionId and UpdateTime included
    assert {t["VersionId"] for t in after.values()} == {"1"}
    assert s3_runs.partitions_before_rerun == s3_runs.partitions_after_rerun


def test_the_catalog_reads_glue_back_as_catalog_tables(s3_runs: S3Runs) -> None:
    catalog = build_catalog(s3_settings())
    assert isinstance(catalog, GlueCatalog)
    listed = [t.name for t in catalog.list_tables()]
    assert listed == sorted(listed) and set(RUBRIC_COUNTS) <= set(listed)
    trusted = catalog.require_table("customer_trusted")
    assert (trusted.format, trusted.location) == ("parquet", f"{LAKE}/customer/trusted/")
    landing = catalog.require_table("step_trainer_landing")
    assert landing.format == "json"
    assert [c.name for c in landing.columns] == [
        "sensorReadingTime",
        "serialNumber",
        "distanceFromObject",
    ]
    assert catalog.get_table("nope") is None


def _table(name: str, columns: tuple[CatalogColumn, ...], **kwargs: Any) -> CatalogTable:
    return CatalogTable(
        name=name,
        location=f"s3://{BUCKET}/unit/{name}/",
        format="parquet",
        columns=columns,
        **kwargs,
    )


def test_a_schema_change_updates_the_table_and_nothing_else_does(moto_endpoint: str) -> None:
    catalog = GlueCatalog(database="stedi_schema_change", aws=AwsClientsResource())
    glue = boto3.client("glue")
    v1 = _table("readings", (CatalogColumn("id", "bigint"),))

    assert catalog.upsert_table(v1)  # creates the database too
    assert glue.get_database(Name="stedi_schema_change")["Database"]["Name"]
    assert not catalog.upsert_table(v1)
    assert (
        glue.get_table(DatabaseName="stedi_schema_change", Name="readings")["Table"]["VersionId"]
        == "1"
    )

    v2 = _table("readings", (CatalogColumn("id", "bigint"), CatalogColumn("x", "double")))
    assert catalog.upsert_table(v2)
    stored = glue.get_table(DatabaseName="stedi_schema_change", Name="readings")["Table"]
    assert stored["VersionId"] == "2"
    assert [c["Name"] for c in stored["StorageDescriptor"]["Columns"]] == ["id", "x"]
    assert catalog.get_table("readings") == v2
    assert not catalog.upsert_table(v2)


class RecordingClient:
    """Wraps a boto3 client and records the calls the partition code makes."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("get_paginator"):
            return attribute

        def record(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            return attribute(**kwargs)

        return record

    def batches(self, operation: str, key: str) -> list[int]:
        return [len(kwargs[key]) for name, kwargs in self.calls if name == operation]


def test_partitions_are_registered_in_batches_of_at_most_100(moto_endpoint: str) -> None:
    catalog = GlueCatalog(database="stedi_partitions", aws=AwsClientsResource())
    day = CatalogColumn("day", "string")
    table = _table("daily", (CatalogColumn("id", "bigint"),), partition_keys=(day,))
    catalog.upsert_table(table)
    recorder = RecordingClient(catalog.client)
    catalog._client = recorder  # moto accepts any batch size; AWS does not

    partitions = [
        CatalogPartition((f"2022-06-{n:03d}",), f"{table.location}day=2022-06-{n:03d}/")
        for n in range(250)
    ]
    assert catalog.upsert_partitions("daily", partitions) == 250
    assert recorder.batches("batch_create_partition", "PartitionInputList") == [100, 100, 50]
    assert catalog.list_partitions("daily") == sorted(partitions, key=lambda p: p.values)
    stored = boto3.client("glue").get_partitions(DatabaseName="stedi_partitions", TableName="daily")
    first = stored["Partitions"][0]["StorageDescriptor"]
    assert first["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE  # stored like its table

    # Nothing new: no write at all. Some moved: only those are updated, in batches too.
    recorder.calls.clear()
    assert catalog.upsert_partitions("daily", partitions) == 0
    assert [name for name, _ in recorder.calls if name.startswith("batch")] == []
    moved = [CatalogPartition(p.values, p.location + "v2/") for p in partitions[:130]]
    assert catalog.upsert_partitions("daily", moved + partitions[130:]) == 130
    assert recorder.batches("batch_update_partition", "Entries") == [100, 30]
    assert recorder.batches("batch_create_partition", "PartitionInputList") == []
    assert catalog.list_partitions("daily")[0].location.endswith("v2/")

    # A schema change reaches the partitions too (each is stored with its table's columns).
    wider = _table(
        "daily",
        (CatalogColumn("id", "bigint"), CatalogColumn("x", "double")),
        partition_keys=(day,),
    )
    assert catalog.upsert_table(wider)
    recorder.calls.clear()
    assert catalog.upsert_partitions("daily", moved + partitions[130:]) == 250
    assert recorder.batches("batch_update_partition", "Entries") == [100, 100, 50]
    assert catalog.upsert_partitions("daily", moved + partitions[130:]) == 0


def test_the_spark_config_of_an_s3_lake(moto_endpoint: str) -> None:
    require_s3a_jars()
    config = s3_settings().spark_config()
    class_path = config["spark.driver.extraClassPath"].split(":")
    assert [Path(p).name for p in class_path] == list(s3_module.S3A_JARS)
    assert config["spark.hadoop.fs.s3a.endpoint"] == moto_endpoint
    assert config["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert config["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert config["spark.hadoop.fs.s3a.endpoint.region"] == REGION
    assert config["spark.hadoop.fs.s3a.aws.credentials.provider"].endswith(
        "DefaultCredentialsProvider"
    )
    local = Settings(lake="lake").spark_config()
    assert not any(key.startswith("spark.hadoop.fs.s3a") for key in local)


def test_an_s3_lake_without_the_jars_names_the_fetch_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEDI_JAR_CACHE", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=r"scripts/fetch_s3a_jars\.py"):
        s3_settings().spark_config()
    # A local lake does not need them.
    assert "spark.driver.extraClassPath" not in Settings(lake="lake").spark_config()


def test_athena_queries_go_to_the_database_and_the_lake(moto_endpoint: str) -> None:
    """Wiring only: moto's Athena runs no SQL. It answers with results queued through its
    API, and writes them to S3 only once GetQueryResults is called, which dagster-aws's
    client never does (it reads the CSV), so the test asks for them after each poll."""
    import requests

    boto3.client("s3").create_bucket(Bucket="stedi-athena")
    queued = {
        "region": REGION,
        "results": [
            {
                "rows": [
                    {"Data": [{"VarCharValue": "n"}]},  # Athena's CSV starts with a header
                    {"Data": [{"VarCharValue": "482"}]},
                ],
                "column_info": [],
            }
        ],
    }
    response = requests.post(f"{moto_endpoint}/moto-api/static/athena/query-results", json=queued)
    assert response.status_code == 201

    class MotoAthena(AthenaClientResource):
        def get_client(self):  # type: ignore[no-untyped-def]
            client = super().get_client()

            def materialize(parsed: dict[str, Any], **_: Any) -> None:
                execution_id = parsed.get("QueryExecution", {}).get("QueryExecutionId")
                state = parsed.get("QueryExecution", {}).get("Status", {}).get("State")
                if execution_id and state == "SUCCEEDED":
                    boto3.client("athena").get_query_results(QueryExecutionId=execution_id)

            client.client.meta.events.register("after-call.athena.GetQueryExecution", materialize)
            return client

    rows = run_athena_query(
        "SELECT COUNT(*) AS n FROM customer_trusted",
        database="stedi",
        output_location="s3://stedi-athena/results/",
        resource=MotoAthena(polling_interval=0),
    )
    assert rows == [("482",)]
    athena = boto3.client("athena")
    execution_id = athena.list_query_executions()["QueryExecutionIds"][-1]
    execution = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
    assert execution["Query"] == "SELECT COUNT(*) AS n FROM customer_trusted"
    assert execution["QueryExecutionContext"]["Database"] == "stedi"
    assert execution["ResultConfiguration"]["OutputLocation"].startswith("s3://stedi-athena/")


def test_query_with_athena_needs_an_s3_lake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from stedi_assets.cli import main

    assert main(["query", "--engine", "athena", "--lake", str(tmp_path), "SELECT 1"]) == 2
    assert "needs an s3:// lake" in capsys.readouterr().err
