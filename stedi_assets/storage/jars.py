"""The jars Spark needs beyond pyspark's own, from the cache ``scripts/fetch_jars.py`` fills.

Jars must be on the JVM's class path when it starts, and the session is process-wide
(``getOrCreate``), so every session carries all of them, whatever its lake: a local run that
starts the session first must not lock a later s3:// run out. They go on the driver's and
executors' class path (an entry costs nothing), not in ``spark.jars`` (shipped to every
executor of every application).
"""

import os
from pathlib import Path

FETCH_SCRIPT = "scripts/fetch_jars.py"

# Iceberg: every table past landing; its AWS bundle carries S3FileIO, the Glue catalog and the
# AWS SDK v2 that S3A also uses. Keep in step with the fetch script (a test checks it).
ICEBERG_JARS: tuple[str, ...] = (
    "iceberg-spark-runtime-4.1_2.13-1.12.0.jar",
    "iceberg-aws-bundle-1.12.0.jar",
    "sqlite-jdbc-3.54.1.0.jar",
)
# S3A of pyspark 4.1.4's Hadoop (3.4.2): landing JSON on an s3:// lake.
S3A_JARS: tuple[str, ...] = (
    "hadoop-aws-3.4.2.jar",
    "analyticsaccelerator-s3-1.2.1.jar",
    "wildfly-openssl-2.1.4.Final.jar",
    "s3-transfer-manager-2.54.17.jar",
    "apache-client-2.54.17.jar",
)
JARS: tuple[str, ...] = ICEBERG_JARS + S3A_JARS


class JarsMissing(FileNotFoundError):
    """Jars are not in the cache; the message says how to fetch them."""


def jar_cache() -> Path:
    """``$STEDI_JAR_CACHE``, else ``~/.cache/stedi/jars`` (the fetch script's default)."""
    configured = os.environ.get("STEDI_JAR_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache/stedi/jars"


def require_jars(names: tuple[str, ...] = JARS) -> list[Path]:
    """The cached paths of ``names``; a clear error naming the fetch script when any is missing."""
    paths = [jar_cache() / name for name in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise JarsMissing(
            f"jars Spark needs are not in {jar_cache()} (missing: {', '.join(missing)}); run "
            f"`.venv/bin/python {FETCH_SCRIPT}` (part of `make install`) to download them "
            "from Maven Central"
        )
    return paths


def class_path_config(jars: list[Path]) -> dict[str, str]:
    """Driver and executor class path entries for ``jars``."""
    class_path = os.pathsep.join(str(p) for p in jars)
    return {"spark.driver.extraClassPath": class_path, "spark.executor.extraClassPath": class_path}
