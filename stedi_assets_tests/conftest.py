"""Shared fixtures: one Spark session for the whole suite, and lakes in temp folders."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance
from pyspark.sql import DataFrame, SparkSession

from stedi_assets.partitions import RANGE_END_TAG, RANGE_START_TAG, add_days
from stedi_assets.settings import Settings, prepare_spark_environment
from stedi_assets.simulator import generate_landing, write_landing
from stedi_assets.storage.iceberg import CatalogConfig
from stedi_assets_tests.aws_fixtures import moto_endpoint  # noqa: F401  (one moto server per session)

REPO = Path(__file__).resolve().parents[1]
LANDING_ENTITIES = ("customer", "accelerometer", "step_trainer")


def reference_data() -> Path:
    """The Udacity reference landing zone; tests that need it fail (never skip) without it."""
    path = Path(os.environ.get("STEDI_REFERENCE_DATA", REPO.parent / "shared" / "reference-data"))
    if not (path / "customer" / "landing").is_dir():
        raise FileNotFoundError(
            f"reference data not found at {path}; set STEDI_REFERENCE_DATA to the folder that "
            "holds customer/, accelerometer/ and step_trainer/"
        )
    return path


def lake_settings(lake: Path | str) -> Settings:
    return Settings(lake=str(lake), spark_master="local[2]", shuffle_partitions=2)


def lake_catalog(lake: Path | str) -> CatalogConfig:
    """The Iceberg catalog of a lake, as the lakehouse configures it."""
    settings = lake_settings(lake)
    sqlite = None if settings.is_s3 else settings.catalog_file
    return CatalogConfig(settings.lake_root, settings.database, sqlite)


def published_table(spark: SparkSession, lake: Path | str, name: str) -> DataFrame:
    """Table ``name`` of ``lake`` as readers see it: main's current snapshot."""
    catalog = lake_catalog(lake)
    catalog.register(spark)
    return spark.table(catalog.identifier(name))


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """One JVM for the suite: every run's PySparkResource gets this session back."""
    prepare_spark_environment()
    builder = SparkSession.builder
    for key, value in lake_settings("unused").spark_config().items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def link_reference_landing(lake: Path) -> Path:
    """A lake whose landing folders are the (read-only) reference data, linked, not copied."""
    source = reference_data()
    for entity in LANDING_ENTITIES:
        (lake / entity).mkdir(parents=True, exist_ok=True)
        (lake / entity / "landing").symlink_to(source / entity / "landing")
    return lake


@pytest.fixture
def reference_lake(tmp_path: Path) -> Path:
    return link_reference_landing(tmp_path / "lake")


@pytest.fixture(scope="session")
def simulated_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Simulated landing data, written once; copy it with ``fresh_lake`` before writing."""
    landing = tmp_path_factory.mktemp("simulated")
    write_landing(str(landing), generate_landing(customers=40, days=3, seed=7))
    return landing


@pytest.fixture
def simulated_lake(simulated_landing: Path, tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    shutil.copytree(simulated_landing, lake)
    return lake


def instance_for(tags: dict[str, str]) -> DagsterInstance:
    """A throwaway Dagster instance whose day partitions cover the days of a run's range
    ``tags``, as the sensors and ``stedi run`` leave a real one."""
    instance = DagsterInstance.ephemeral()
    add_days(instance, tags[RANGE_START_TAG], tags[RANGE_END_TAG])
    return instance
