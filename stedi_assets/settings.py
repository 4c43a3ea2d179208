"""Settings from the environment, and the one place that chooses local or AWS resources.

| variable | meaning | default |
|---|---|---|
| STEDI_LAKE | lake root: a local folder or ``s3://bucket/prefix`` | ``./lake`` |
| STEDI_SPARK_MASTER | Spark master URL | ``local[*]`` |
| STEDI_SPARK_DRIVER_MEMORY | driver memory (the whole Spark in local mode) | ``2g`` |
| STEDI_SHUFFLE_PARTITIONS | ``spark.sql.shuffle.partitions`` | ``4`` |
| STEDI_SPARK_DRIVER_HOST | the driver's address, for workers on other machines | ``127.0.0.1`` |
| STEDI_CATALOG_PATH | embedded catalog file (local lakes) | ``<lake>/_catalog/catalog.sqlite`` |
| STEDI_DATABASE | catalog database name | ``stedi`` |
| STEDI_SCRATCH_DIR | Spark's local scratch (a folder per process) | ``$TMPDIR/stedi-scratch-UID`` |
"""

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Dagster, Spark and the AWS side load only when resources are built: ``stedi query`` over a
# local lake, and a refused statement, need none of them.
if TYPE_CHECKING:
    from stedi_assets.storage.lake import Lake
    from stedi_assets.storage.landing_files import LandingFiles
    from stedi_assets.storage.s3 import LakeSparkResource

ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"


@dataclass(frozen=True)
class Settings:
    lake: str = "lake"
    spark_master: str = "local[*]"
    driver_memory: str = "2g"
    shuffle_partitions: int = 4
    # Where executors reach the driver: loopback unless they run on other machines.
    driver_host: str = "127.0.0.1"
    catalog_path: str | None = None
    database: str = "stedi"
    scratch_dir: str | None = None

    @classmethod
    def from_env(cls, **overrides: Any) -> "Settings":
        env = os.environ
        settings = cls(
            lake=env.get("STEDI_LAKE", cls.lake),
            spark_master=env.get("STEDI_SPARK_MASTER", cls.spark_master),
            driver_memory=env.get("STEDI_SPARK_DRIVER_MEMORY", cls.driver_memory),
            shuffle_partitions=int(env.get("STEDI_SHUFFLE_PARTITIONS", cls.shuffle_partitions)),
            driver_host=env.get("STEDI_SPARK_DRIVER_HOST", cls.driver_host),
            catalog_path=env.get("STEDI_CATALOG_PATH") or None,
            database=env.get("STEDI_DATABASE", cls.database),
            scratch_dir=env.get("STEDI_SCRATCH_DIR") or None,
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def is_s3(self) -> bool:
        return self.lake.startswith(("s3://", "s3a://"))

    @property
    def lake_root(self) -> str:
        """The lake as an absolute local path or an S3 URI, without a trailing slash."""
        if self.is_s3:
            return self.lake.rstrip("/")
        return str(Path(self.lake).expanduser().resolve())

    @property
    def catalog_file(self) -> str:
        """The embedded catalog's file of a local lake."""
        return self.catalog_path or f"{self.lake_root}/_catalog/catalog.sqlite"

    def spark_config(self) -> dict[str, str]:
        from stedi_assets.storage.class_archive import archive_config
        from stedi_assets.storage.jars import class_path_config, require_jars
        from stedi_assets.storage.s3 import s3a_spark_config
        from stedi_assets.storage.scratch import default_scratch_root, process_scratch_dir

        scratch_root = Path(self.scratch_dir) if self.scratch_dir else default_scratch_root()
        class_path = class_path_config(require_jars())
        return {
            "spark.master": self.spark_master,
            "spark.app.name": "stedi-lakehouse",
            "spark.driver.memory": self.driver_memory,
            # Spark binds to loopback unless told the driver must be reachable by remote workers.
            "spark.driver.host": self.driver_host,
            "spark.driver.bindAddress": self.driver_host,
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
            "spark.sql.session.timeZone": "UTC",
            # Cached landing rows and shuffle files: a folder of this process's, removed by a
            # later process if this one is killed (they hold every customer's readings).
            "spark.local.dir": str(process_scratch_dir(scratch_root)),
            # Day folders of older lakes' Parquet (upgraded in place) are strings, like `day`.
            "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
            # Iceberg's SQL: branches, CALL procedures, DELETE.
            "spark.sql.extensions": ICEBERG_EXTENSIONS,
            # Iceberg's and S3A's jars (storage/jars.py), whatever the lake: the session is
            # process-wide and jars load only when the JVM starts.
            **class_path,
            # The driver's classes, archived once (storage/class_archive.py): a faster start.
            **archive_config(class_path["spark.driver.extraClassPath"]),
            # An s3:// lake: S3A's Hadoop options for reading landing JSON.
            **(s3a_spark_config() if self.is_s3 else {}),
        }


def prepare_spark_environment() -> None:
    """Python workers must run this interpreter (the project's venv), and Spark must not go
    looking for a public interface to bind to."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


def build_lake(settings: Settings, spark: "LakeSparkResource", writes: bool = True) -> "Lake":
    """The lake resource: on an s3:// lake Iceberg's Glue catalog (and the landing tables
    registered in Glue), else Iceberg's JDBC catalog on a SQLite file under the lake."""
    glue, catalog_path = None, None
    if settings.is_s3:
        # Imported here so that a local lake never loads the AWS side.
        from stedi_assets.aws.clients import aws_clients
        from stedi_assets.storage.glue import GlueLandingTables

        # Region, credentials and endpoint (AWS_ENDPOINT_URL) from the standard AWS chain.
        glue = GlueLandingTables(database=settings.database, aws=aws_clients())
    else:
        catalog_path = settings.catalog_file
    from stedi_assets.storage.lake import Lake

    return Lake(
        root=settings.lake_root,
        spark=spark,
        database=settings.database,
        catalog_path=catalog_path,
        glue=glue,
        writes=writes,
    )


def landing_files(settings: Settings) -> "LandingFiles":
    """The landing folders' listing (what the sensors read), local or on S3."""
    from stedi_assets.storage.landing_files import LandingFiles
    from stedi_assets.storage.s3 import s3_resource

    return LandingFiles(root=settings.lake_root, s3=s3_resource() if settings.is_s3 else None)


def build_resources(settings: Settings, writes: bool = True) -> dict[str, Any]:
    """Every resource the assets use, local or AWS as ``settings`` say. ``writes=False`` for
    read-only use (queries), which reads main and writes no branch."""
    from stedi_assets.rules import Rules
    from stedi_assets.storage.io_manager import LakeIOManager
    from stedi_assets.storage.s3 import LakeSparkResource

    prepare_spark_environment()
    # A PySparkResource that also applies spark.hadoop.* options to an already running session.
    spark = LakeSparkResource(spark_config=settings.spark_config())
    lake = build_lake(settings, spark, writes)
    return {
        "pyspark": spark,
        "lake": lake,
        "io_manager": LakeIOManager(lake=lake),
        "landing_files": landing_files(settings),
        # The rule profile is chosen per run (launchpad or ``stedi run --profile``).
        "rules": Rules.configure_at_launch(),
    }
