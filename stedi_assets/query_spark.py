"""``stedi query --engine spark``: the statement checked once more by Spark's own parser, a
read-only session, and every lakehouse table as a view of its name (``query.py`` checks the
statement first)."""

import logging

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from stedi_assets.query import READ_COMMANDS, NotReadOnly
from stedi_assets.storage.lake import Lake
from stedi_assets.storage.landing_reads import FILE_PROBLEM, LANDING_EXTRA_COLUMNS
from stedi_assets.storage.layout import LANDING_TABLES, TABLES


def check_spark_plan(spark: SparkSession, sql: str) -> None:
    """Raises ``NotReadOnly`` unless Spark parses ``sql`` as a query, or a SHOW / DESCRIBE /
    EXPLAIN: a second look, by Spark's own parser, behind ``check_read_only``."""
    try:
        plan = spark._jsparkSession.sessionState().sqlParser().parsePlan(sql)
    except Py4JJavaError:
        return  # not parsable: running it raises Spark's own, readable, ParseException
    jvm = spark.sparkContext._jvm
    command = jvm.java.lang.Class.forName("org.apache.spark.sql.catalyst.plans.logical.Command")
    name = str(plan.getClass().getSimpleName())
    if command.isInstance(plan) and name not in READ_COMMANDS:
        raise NotReadOnly(f"Spark reads this statement as a {name}: stedi query only reads")


def prepare_read_only_session(spark: SparkSession) -> None:
    """No path-based sources (``parquet.`/etc` ``, ``text.`/etc/hostname` ``), and no Spark
    log lines: a query's error is reported once, in one line, by ``stedi query``."""
    spark.conf.set("spark.sql.runSQLOnFiles", "false")
    spark.sparkContext.setLogLevel("OFF")
    # PySpark logs a failed query's context through a Python logger of its own, at ERROR.
    logging.getLogger("SQLQueryContextLogger").disabled = True


def register_views(lake: Lake) -> list[str]:
    """Every lakehouse table of the lake as a temporary view of its name; returns the names.
    Tables in the catalog that the lakehouse did not create are left out."""
    names = []
    for table in lake.tables():
        if table not in TABLES:
            continue
        lake.read_main(table).createOrReplaceTempView(table)
        names.append(table)
    for spec in LANDING_TABLES:
        try:
            landing = lake.read_landing(spec.name)
        except FileNotFoundError:
            continue
        lines = landing.where(F.col(FILE_PROBLEM).isNull())  # not the files that cannot be read
        lines.drop(*LANDING_EXTRA_COLUMNS).createOrReplaceTempView(spec.name)
        names.append(spec.name)
    return sorted(names)
