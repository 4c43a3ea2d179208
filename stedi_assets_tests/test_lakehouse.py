"""The whole graph, materialized in-process into temp lakes."""

import re
from pathlib import Path

import pytest
from dagster import AssetKey, Definitions, asset
from pyiceberg.catalog.sql import SqlCatalog
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from stedi_assets import definitions
from stedi_assets.definitions import LAKEHOUSE_JOB
from stedi_assets.partitions import range_tags
from stedi_assets.runner import days_in_landing, run_config, run_lakehouse
from stedi_assets.settings import build_resources
from stedi_assets.storage.layout import ASSET_TABLES, TABLES
from stedi_assets_tests.conftest import instance_for, lake_catalog, lake_settings, published_table

QUARANTINES = ("customer_quarantine", "accelerometer_quarantine", "step_trainer_quarantine")
RUBRIC_COUNTS = {
    "customer_landing": 956,
    "accelerometer_landing": 81_273,
    "step_trainer_landing": 28_680,
    "customer_trusted": 482,
    "accelerometer_trusted": 40_981,
    "customers_curated": 482,
    "step_trainer_trusted": 14_460,
    "machine_learning_curated": 43_681,
}
# The direct identifiers, written here rather than imported from the code under test.
IDENTIFIER_COLUMNS = {"customerName", "email", "user", "phone", "birthDay"}

PRIVACY_COUNTS = {
    "customer_trusted": 482,
    "accelerometer_trusted": 32_025,
    "customers_curated": 464,
    "step_trainer_trusted": 11_297,
    "machine_learning_curated": 32_025,
}


def _table(spark: SparkSession, lake: Path, name: str) -> DataFrame:
    return published_table(spark, lake, name)


def _cached_rdds(spark: SparkSession) -> set[int]:
    return set(spark.sparkContext._jsc.getPersistentRDDs().keySet())


def test_reference_data_through_the_udacity_profile_gives_the_rubric_counts(
    spark: SparkSession, reference_lake: Path
) -> None:
    summary = run_lakehouse(lake_settings(reference_lake), "udacity")

    assert summary.success
    assert summary.row_counts == RUBRIC_COUNTS
    for name, count in RUBRIC_COUNTS.items():
        if not TABLES[name].is_landing:  # published, at the Udacity layout's location
            assert _table(spark, reference_lake, name).count() == count
            assert (reference_lake / TABLES[name].relative_path / "metadata").is_dir()
    outcomes = {(c.asset, c.name): c for c in summary.checks}
    pairing = outcomes[("machine_learning_curated", "same_customer_pairing")]
    assert (pairing.passed, pairing.blocking_failure, pairing.violations) == (False, False, 2_700)
    early = outcomes[("accelerometer_trusted", "no_reading_before_consent")]
    assert not early.passed and not early.blocking_failure and early.violations > 0


def test_reference_data_through_the_privacy_profile_passes_every_check(
    spark: SparkSession, reference_lake: Path
) -> None:
    cached_before = _cached_rdds(spark)
    summary = run_lakehouse(lake_settings(reference_lake), "privacy")

    assert summary.success
    assert all(c.passed for c in summary.checks), [c for c in summary.checks if not c.passed]
    # What the run kept cached (parsed landing, customers_curated's readers) is freed at its end.
    assert _cached_rdds(spark) <= cached_before
    counts = summary.row_counts
    # The README's privacy column: pre-consent and cross-customer rows gone.
    assert {name: counts[name] for name in PRIVACY_COUNTS} == PRIVACY_COUNTS


def test_simulated_lake_privacy_run_enforces_every_privacy_rule(
    spark: SparkSession, simulated_lake: Path
) -> None:
    summary = run_lakehouse(lake_settings(simulated_lake), "privacy")

    assert summary.success
    assert set(summary.row_counts) == set(ASSET_TABLES)
    assert all(c.passed for c in summary.checks), [c for c in summary.checks if not c.passed]
    assert all(summary.row_counts[name] > 0 for name in ASSET_TABLES)
    # Another engine reads the same embedded catalog: pyiceberg's SqlCatalog on the SQLite file.
    other = SqlCatalog(
        "lake",
        uri=f"sqlite:///{simulated_lake}/_catalog/catalog.sqlite",
        warehouse=f"file://{simulated_lake}",
    )
    for name in ASSET_TABLES:
        if not TABLES[name].is_landing:
            table = other.load_table(f"stedi.{name}")
            assert table.scan().to_arrow().num_rows == summary.row_counts[name], name

    customers = _table(spark, simulated_lake, "customer_trusted")
    accel = _table(spark, simulated_lake, "accelerometer_trusted")
    steps = _table(spark, simulated_lake, "step_trainer_trusted")
    curated = _table(spark, simulated_lake, "customers_curated")
    ml = _table(spark, simulated_lake, "machine_learning_curated")

    # Nobody in customer_trusted lacks consent; the simulated withdrawal is gone everywhere.
    landing = spark.read.json(
        str(simulated_lake / "customer" / "landing"), recursiveFileLookup=True
    )
    withdrawn = _withdrawn_emails(landing)
    assert withdrawn, "the simulator always writes a consent withdrawal"
    assert customers.where(F.col("email").isin(withdrawn)).count() == 0
    assert accel.where(F.col("user").isin(withdrawn)).count() == 0
    # No reading before its owner's consent.
    consent = customers.select("email", "serialNumber", "shareWithResearchAsOfDate")
    early_accel = accel.join(consent, accel.user == consent.email).where(
        F.col("timestamp") < F.col("shareWithResearchAsOfDate")
    )
    early_steps = steps.join(consent, "serialNumber").where(
        F.col("sensorReadingTime") < F.col("shareWithResearchAsOfDate")
    )
    assert early_accel.count() == 0 and early_steps.count() == 0
    # One row per e-mail and per serial; no trusted duplicates; no PII in the ML table.
    assert curated.count() == curated.select("email").distinct().count()
    assert curated.count() == curated.select("serialNumber").distinct().count()
    assert accel.count() == accel.distinct().count() and steps.count() == steps.distinct().count()
    assert not IDENTIFIER_COLUMNS.intersection(ml.columns)


def _withdrawn_emails(landing: DataFrame) -> list[str]:
    """E-mails with a consenting record followed by a later one without consent."""
    per_email = landing.groupBy("email").agg(
        F.max_by("shareWithResearchAsOfDate", "lastUpdateDate").alias("latest"),
        F.max("shareWithResearchAsOfDate").alias("ever"),
    )
    rows = per_email.where(F.col("latest").isNull() & F.col("ever").isNotNull()).collect()
    return [row.email for row in rows]


def test_materialization_metadata_uses_dagster_standard_keys(
    spark: SparkSession, simulated_lake: Path
) -> None:
    from dagster import DagsterInstance

    with DagsterInstance.ephemeral() as instance:
        summary = run_lakehouse(lake_settings(simulated_lake), "privacy", instance=instance)
        assert summary.success
        latest = {
            name: instance.get_latest_materialization_event(
                AssetKey(name)
            ).asset_materialization.metadata
            for name in [*summary.row_counts, *QUARANTINES]
        }
    metadata = latest["customer_trusted"]
    assert metadata["dagster/row_count"].value == summary.row_counts["customer_trusted"]
    assert metadata["dagster/table_name"].value == "stedi.customer_trusted"
    assert metadata["dagster/uri"].value == f"{simulated_lake}/customer/trusted/"
    columns = [c.name for c in metadata["dagster/column_schema"].schema.columns]
    assert "email" in columns and "shareWithResearchAsOfDate" in columns
    preview = metadata["preview"].value
    assert "@" not in preview and "***" in preview  # e-mails never reach the UI
    # Nor serial numbers (UUIDs here): the event log outlives a customer's erasure.
    for table in ("customer_trusted", "step_trainer_trusted", "machine_learning_curated"):
        shown = latest[table]["preview"].value
        assert "serialNumber" in shown and not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", shown)
    # Times read as UTC beside their epoch milliseconds: "1655564470000 (2022-06-18 … UTC)".
    assert re.search(r"\d{13} \(20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC\)", preview), preview
    # Every column of every table, landing and quarantine included, says what it holds.
    assert set(latest) == {*RUBRIC_COUNTS, *QUARANTINES}
    for name, table_metadata in latest.items():
        for column in table_metadata["dagster/column_schema"].schema.columns:
            assert column.description, (name, column.name)
    day = {
        c.name: c for c in latest["accelerometer_trusted"]["dagster/column_schema"].schema.columns
    }
    assert "UTC day" in day["day"].description


def test_a_failing_blocking_check_stops_everything_downstream(simulated_lake: Path) -> None:
    """A customer_trusted that lets a consent-less customer through is caught and contained."""

    @asset(name="customer_trusted", group_name="trusted")
    def leaky_customer_trusted(customer_landing: DataFrame) -> DataFrame:
        return customer_landing.drop("_corrupt_record").dropDuplicates(["email"])

    assets = [
        leaky_customer_trusted if a.key.path[-1] == "customer_trusted" else a
        for a in definitions.ASSETS
    ]
    defs = Definitions(
        assets=assets,
        asset_checks=definitions.CHECKS,
        jobs=[definitions.stedi_lakehouse],
        resources=build_resources(lake_settings(simulated_lake)),
        executor=definitions.in_process_executor,
    )
    days = days_in_landing(lake_settings(simulated_lake))
    assert days is not None
    result = defs.resolve_job_def(LAKEHOUSE_JOB).execute_in_process(
        run_config=run_config("privacy"),
        raise_on_error=False,
        tags=range_tags(*days),
        instance=instance_for(range_tags(*days)),
    )

    assert not result.success
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert "consent_present" in failed
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert materialized == {
        "customer_landing",
        "accelerometer_landing",
        "step_trainer_landing",
        "customer_quarantine",
        "accelerometer_quarantine",
        "step_trainer_quarantine",
        "customer_trusted",
    }
    # customer_trusted was written and audited, but its failed check published nothing.
    catalog = lake_catalog(simulated_lake)
    spark = SparkSession.getActiveSession()
    assert spark is not None
    catalog.register(spark)
    assert spark.table(catalog.identifier("customer_trusted")).count() == 0
    assert not spark.sql(
        f"SHOW TABLES IN {catalog.spark_catalog}.stedi LIKE 'accelerometer_trusted'"
    ).take(1)


@pytest.mark.parametrize("table", ["customer_landing", "accelerometer_landing"])
def test_a_missing_landing_folder_is_a_clear_error(tmp_path: Path, table: str) -> None:
    (tmp_path / "empty-lake").mkdir()
    summary = run_lakehouse(lake_settings(tmp_path / "empty-lake"), "privacy")
    assert not summary.success
    assert table not in summary.row_counts
    assert any(
        f"no landing data for {table}" in failure and "empty-lake" in failure
        for failure in summary.failures
    ), summary.failures


def test_a_missing_lake_is_one_clear_error_and_nothing_is_created(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere does not exist"):
        run_lakehouse(lake_settings(tmp_path / "nowhere"), "privacy")
    assert not (tmp_path / "nowhere").exists()


def test_every_check_can_be_executed_alone_as_from_its_asset_s_page(
    spark: SparkSession, simulated_lake: Path
) -> None:
    """The UI's "Execute" on one check runs that check only, over the tables as they are."""
    from dagster import AssetCheckKey, AssetKey

    settings = lake_settings(simulated_lake)
    assert run_lakehouse(settings, "privacy").success
    job = definitions.build_definitions(settings).resolve_job_def(LAKEHOUSE_JOB)
    every_check = {key for checks in definitions.CHECKS for key in checks.check_keys}
    for key in every_check:  # each one alone is a plan Dagster accepts
        job.get_subset(asset_selection=set(), asset_check_selection={key})

    one = AssetCheckKey(AssetKey("accelerometer_trusted"), "no_duplicate_readings")
    result = job.get_subset(asset_selection=set(), asset_check_selection={one}).execute_in_process(
        run_config=run_config("privacy")
    )
    assert result.success
    assert [(e.asset_key, e.check_name) for e in result.get_asset_check_evaluations()] == [
        (one.asset_key, one.name)
    ]
    assert result.get_asset_check_evaluations()[0].passed


def test_materializing_one_asset_without_the_publish_step_publishes_it_at_the_run_end(
    spark: SparkSession, simulated_lake: Path
) -> None:
    """As "Materialize" on one asset in the UI: no publish step in the run; its checks pass,
    so the run's end publishes what it wrote."""
    from dagster import AssetKey

    defs = definitions.build_definitions(lake_settings(simulated_lake))
    result = defs.resolve_job_def(LAKEHOUSE_JOB).execute_in_process(
        run_config=run_config("privacy"),
        asset_selection=[AssetKey("customer_trusted")],
        raise_on_error=False,
    )

    assert result.success
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert materialized == {"customer_trusted"}
    count = published_table(spark, simulated_lake, "customer_trusted").count()
    assert (
        count
        == result.get_asset_materialization_events()[-1]
        .materialization.metadata["dagster/row_count"]
        .value
    )
    assert count > 0
