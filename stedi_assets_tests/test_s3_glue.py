"""The lakehouse on an s3:// lake, against moto's server over HTTP: Iceberg tables in Glue
(Iceberg's Glue catalog, S3FileIO), landing JSON read through S3A and registered in Glue from
its DDL. The whole graph runs twice on the reference landing data; a third run is killed
between write and publish.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from dagster_aws.athena import AthenaClientResource
from pyspark.sql import SparkSession

from stedi_assets.aws.athena import run_athena_query
from stedi_assets.runner import RunSummary, run_lakehouse
from stedi_assets.settings import Settings
from stedi_assets.storage import iceberg
from stedi_assets.storage import s3 as s3_module
from stedi_assets.storage.ddl import landing_ddl
from stedi_assets.storage.glue import JSON_SERDE, TEXT_INPUT
from stedi_assets.storage.jars import JARS
from stedi_assets.storage.layout import TABLES
from stedi_assets.storage.pause import BEFORE_PUBLISH
from stedi_assets_tests.aws_fixtures import REGION, require_s3a_jars
from stedi_assets_tests.conftest import reference_data
from stedi_assets_tests.test_lakehouse import RUBRIC_COUNTS

BUCKET = "stedi-lake-test"
LAKE = f"s3://{BUCKET}/lake"
ICEBERG_TABLES = [name for name, spec in TABLES.items() if not spec.is_landing]


def s3_settings(lake: str = LAKE, database: str = "stedi") -> Settings:
    return Settings(lake=lake, spark_master="local[2]", shuffle_partitions=2, database=database)


def s3_catalog(spark: SparkSession) -> iceberg.CatalogConfig:
    catalog = iceberg.CatalogConfig(LAKE, "stedi")
    catalog.register(spark)
    return catalog


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


def _glue_tables(glue: Any) -> list[dict[str, Any]]:
    """The tables of the research and the quarantine database."""
    return [
        table
        for database in ("stedi", "stedi_quarantine")
        for table in glue.get_tables(DatabaseName=database)["TableList"]
    ]


@pytest.fixture(scope="module")
def s3_runs(spark: SparkSession, moto_endpoint: str) -> Iterator[S3Runs]:
    """The whole graph twice on the reference data in S3 (one upload, two runs)."""
    require_s3a_jars()
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    assert upload_reference_landing(BUCKET, "lake") == 13
    glue = boto3.client("glue")
    first = run_lakehouse(s3_settings(), "udacity")
    assert first.success, first.failures
    before = _glue_tables(glue)
    second = run_lakehouse(s3_settings(), "udacity")
    after = _glue_tables(glue)
    yield S3Runs(first, second, before, after)


@pytest.mark.parametrize(
    ("uri", "parts"),
    [
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/lake/", ("bucket", "lake")),
        ("s3a://bucket/a/b", ("bucket", "a/b")),
        ("s3://bucket/what?/#1", ("bucket", "what?/#1")),  # S3 keys may hold ? and #
    ],
)
def test_s3_uris_split_into_bucket_and_prefix(uri: str, parts: tuple[str, str]) -> None:
    assert s3_module.split_s3_uri(uri) == parts


@pytest.mark.parametrize("uri", ["/local/lake", "s3://", "s3:///prefix", "gs://bucket/lake"])
def test_what_is_not_an_s3_uri_is_refused(uri: str) -> None:
    with pytest.raises(ValueError, match="is not an s3://bucket/prefix URI"):
        s3_module.split_s3_uri(uri)


def test_the_whole_graph_on_s3_gives_the_rubric_counts(
    spark: SparkSession, s3_runs: S3Runs
) -> None:
    assert s3_runs.first.row_counts == RUBRIC_COUNTS
    assert s3_runs.second.success, s3_runs.second.failures
    assert s3_runs.second.row_counts == RUBRIC_COUNTS
    catalog = s3_catalog(spark)
    assert spark.table(catalog.identifier("customer_trusted")).count() == 482


def test_every_table_is_an_iceberg_table_in_glue_at_its_layout_location(
    s3_runs: S3Runs,
) -> None:
    tables = {t["Name"]: t for t in s3_runs.catalog_after_rerun}
    s3 = boto3.client("s3")
    for name in ICEBERG_TABLES:
        table = tables[name]
        assert table["Parameters"]["table_type"] == "ICEBERG", name
        # Raw landing lines are kept apart from the tables researchers query.
        quarantine = TABLES[name].zone == "quarantine"
        assert table["DatabaseName"] == ("stedi_quarantine" if quarantine else "stedi"), name
        location = TABLES[name].location(LAKE).rstrip("/")
        assert table["StorageDescriptor"]["Location"] == location, name
        metadata = table["Parameters"]["metadata_location"]
        assert metadata.startswith(f"{location}/metadata/") and metadata.endswith(".metadata.json")
        prefix = location.removeprefix(f"s3://{BUCKET}/")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]]
        if TABLES[name].zone != "quarantine":  # the reference data has no bad line
            assert any(k.endswith(".parquet") and "/data/" in k for k in keys), name


def test_landing_tables_are_json_tables_in_glue_from_their_ddl(s3_runs: S3Runs) -> None:
    tables = {t["Name"]: t for t in s3_runs.catalog_after_rerun}
    for name, spec in TABLES.items():
        if not spec.is_landing:
            continue
        table, ddl = tables[name], landing_ddl(name)
        sd = table["StorageDescriptor"]
        assert sd["Location"] == spec.location(LAKE)
        assert table["TableType"] == "EXTERNAL_TABLE"
        assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == [
            (c.name, c.hive_type) for c in ddl.columns
        ]
        # Athena and the Glue console show each column's description from sql/.
        comments = [c.get("Comment") for c in sd["Columns"]]
        assert comments == [c.comment for c in ddl.columns] and all(comments), comments
        assert sd["SerdeInfo"]["SerializationLibrary"] == JSON_SERDE
        assert sd["SerdeInfo"]["Parameters"] == {
            "ignore.malformed.json": "FALSE",
            "case.insensitive": "FALSE",
        }
        assert sd["InputFormat"] == TEXT_INPUT
        assert table["Parameters"]["classification"] == "json"


def test_a_rerun_leaves_landing_tables_alone_and_commits_a_snapshot_per_table(
    s3_runs: S3Runs,
) -> None:
    before = {t["Name"]: t for t in s3_runs.catalog_before_rerun}
    after = {t["Name"]: t for t in s3_runs.catalog_after_rerun}
    for name, spec in TABLES.items():
        if spec.is_landing:
            assert before[name] == after[name]  # VersionId and UpdateTime included
        else:
            old, new = (t[name]["Parameters"]["metadata_location"] for t in (before, after))
            assert old != new, name  # the rerun published a new snapshot


def test_a_run_killed_between_write_and_publish_leaves_s3_at_the_previous_snapshot(
    spark: SparkSession, s3_runs: S3Runs, tmp_path: Path
) -> None:
    catalog = s3_catalog(spark)
    before = {t: iceberg.main_snapshot(spark, catalog, t) for t in ICEBERG_TABLES}
    pause = tmp_path / "pause"
    pause.mkdir()
    env = {
        **os.environ,
        "STEDI_SPARK_MASTER": "local[2]",
        "STEDI_SHUFFLE_PARTITIONS": "2",
        "STEDI_PAUSE_AT": f"{BEFORE_PUBLISH}:{pause}",
    }
    run = subprocess.Popen(
        [sys.executable, "-m", "stedi_assets.cli", "run", "--lake", LAKE, "--profile", "udacity"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while not (pause / f"{BEFORE_PUBLISH}.reached").exists():
        assert run.poll() is None, run.stdout.read() if run.stdout else ""
        assert time.monotonic() < deadline
        time.sleep(0.1)
    branches = iceberg.run_branches(iceberg.refs(spark, catalog, "customer_trusted"))
    assert branches  # written and audited on its branch
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=60)

    assert {t: iceberg.main_snapshot(spark, catalog, t) for t in ICEBERG_TABLES} == before
    assert spark.table(catalog.identifier("customer_trusted")).count() == 482


def test_the_spark_config_of_an_s3_lake(moto_endpoint: str) -> None:
    require_s3a_jars()
    config = s3_settings().spark_config()
    class_path = config["spark.driver.extraClassPath"].split(":")
    assert [Path(p).name for p in class_path] == list(JARS)
    assert config["spark.hadoop.fs.s3a.endpoint"] == moto_endpoint
    assert config["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert config["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert config["spark.hadoop.fs.s3a.endpoint.region"] == REGION
    assert config["spark.hadoop.fs.s3a.aws.credentials.provider"].endswith(
        "DefaultCredentialsProvider"
    )
    local = Settings(lake="lake").spark_config()
    assert not any(key.startswith("spark.hadoop.fs.s3a") for key in local)


def test_a_lake_without_the_jars_names_the_fetch_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEDI_JAR_CACHE", str(tmp_path / "empty"))
    for settings in (s3_settings(), Settings(lake="lake")):  # Iceberg's jars: every lake
        with pytest.raises(FileNotFoundError, match=r"scripts/fetch_jars\.py"):
            settings.spark_config()


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
