"""A class-data-sharing archive of the Spark driver's classes, so that a run's JVM starts in
about two thirds of the time.

A cold Spark driver spends most of its start loading and verifying some ten thousand classes
(Spark, Iceberg, Hadoop). Java 13+ can record the classes an application loaded into an
archive when it exits (``-XX:ArchiveClassesAtExit``) and map that archive at the next start
(``-XX:SharedArchiveFile``). On the project's 2-core machine a session and its first query took
14.6 s cold and 8.7 s with the archive.

The archive is built once per Python environment, next to the jars (``make install`` runs
this module), by a throwaway session that creates, writes and reads an Iceberg table, so the
archive holds the classes a run loads. Its name carries a digest of the environment, the JVM,
pyspark's version and the class path: after any of them changes, runs ignore the old archive,
and the next install builds a new one and deletes the environment's old one (checkouts on one
machine share the jar cache, and each keeps its own archive). Without an archive (or with a
stale one, which the JVM rejects and goes on without), Spark starts as it always did: the
archive only makes it faster.

    python -m stedi_assets.storage.class_archive   # builds it, if missing
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from stedi_assets.storage.jars import jar_cache

DRIVER_JAVA_OPTIONS = "spark.driver.extraJavaOptions"


def _java() -> Path | None:
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    return Path(found).resolve() if found else None


def archive_path(class_path: str) -> Path | None:
    """Where the archive of this JVM, pyspark and class path is (or would be); None without
    a JVM to name."""
    java = _java()
    if java is None or not java.exists():
        return None
    from pyspark.version import __version__ as pyspark_version

    identity = "\n".join([str(java), str(java.stat().st_mtime_ns), pyspark_version, class_path])
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return jar_cache() / f"{_environment_prefix()}{digest}.jsa"


def _environment_prefix() -> str:
    """The start of the names of this Python environment's archives. The jar cache is shared
    by every checkout on the machine: an install replaces its own environment's archive and
    leaves the other environments' archives alone."""
    environment = hashlib.sha256(sys.prefix.encode()).hexdigest()[:8]
    return f"spark-driver-classes-{environment}-"


def remove_replaced_archives(current: Path) -> None:
    """Deletes this environment's archives other than ``current`` (each is ~200 MB)."""
    for old in current.parent.glob(f"{_environment_prefix()}*.jsa"):
        if old != current:
            old.unlink(missing_ok=True)


def archive_config(class_path: str) -> dict[str, str]:
    """The driver option that maps the archive, when it has been built; else nothing."""
    if os.environ.get("STEDI_CLASS_ARCHIVE", "on") == "off":
        return {}
    path = archive_path(class_path)
    if path is None or not path.is_file():
        return {}
    return {DRIVER_JAVA_OPTIONS: f"-XX:SharedArchiveFile={path} -Xshare:auto"}


def build_archive() -> Path | None:
    """Builds the archive of the current class path unless it exists; returns its path."""
    from stedi_assets.settings import Settings

    settings = Settings(lake=tempfile.gettempdir())
    config = settings.spark_config()
    path = archive_path(config["spark.driver.extraClassPath"])
    if path is None or path.is_file():
        return path
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    with tempfile.TemporaryDirectory(prefix="stedi-class-archive-") as lake:
        # A child process: the JVM writes the archive when it exits, and must exit before the
        # file can be moved into place.
        recorded = subprocess.run(
            [sys.executable, "-m", "stedi_assets.storage.class_archive", "--record", lake],
            env={**os.environ, "STEDI_CLASS_ARCHIVE_OUT": str(partial)},
            capture_output=True,
            text=True,
        )
    if recorded.returncode != 0 or not partial.is_file() or partial.stat().st_size == 0:
        partial.unlink(missing_ok=True)
        # Not fatal: runs start without the archive, only slower.
        print(recorded.stderr[-2000:], file=sys.stderr)
        return None
    partial.replace(path)  # atomic: a run sees the whole archive or none
    remove_replaced_archives(path)
    return path


def _record(lake: str) -> None:
    """A small run's worth of Spark and Iceberg work, in a JVM that archives its classes."""
    from pyspark.sql import SparkSession

    from stedi_assets.settings import Settings, prepare_spark_environment
    from stedi_assets.storage.iceberg import CatalogConfig

    prepare_spark_environment()
    (Path(lake) / "_catalog").mkdir(parents=True)
    config = Settings(lake=lake).spark_config()
    out = os.environ["STEDI_CLASS_ARCHIVE_OUT"]
    # The JVM warns of every class it cannot archive (generated ones, old class files): noise.
    config[DRIVER_JAVA_OPTIONS] = f"-XX:ArchiveClassesAtExit={out} -Xlog:cds=error"
    builder = SparkSession.builder
    for key, value in config.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    catalog = CatalogConfig(lake, "stedi", str(Path(lake) / "_catalog" / "catalog.sqlite"))
    catalog.register(spark)
    table = f"{catalog.spark_catalog}.stedi.warm_up"
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {catalog.spark_catalog}.stedi")
    spark.sql(f"CREATE TABLE {table} (user string, day string, x double) PARTITIONED BY (day)")
    rows = spark.createDataFrame(
        [("a", "2022-06-18", 1.0), ("b", "2022-06-19", 2.0)], "user string, day string, x double"
    )
    rows.writeTo(table).overwritePartitions()
    spark.table(table).groupBy("day").count().join(rows, "day").dropDuplicates().collect()
    json_file = Path(lake) / "a.json"
    json_file.write_text('{"user": "a", "x": 1.0}\n')
    spark.read.schema("user string, x double").json(str(json_file)).collect()
    spark.sql(f"SELECT * FROM {table}.snapshots").collect()
    spark.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--record"]:
        _record(sys.argv[2])
    else:
        built = build_archive()
        print(f"Spark driver class archive: {built or 'not built (runs start without it)'}")
