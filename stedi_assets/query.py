"""SQL over the lakehouse tables by name: the local stand-in for Athena. Tables are read at
main's current snapshot (never a run's unpublished branch); landing tables are views of their
JSON files with the DDL's schema.

``stedi query`` only reads. A statement is checked before any engine sees it
(``check_read_only``): one statement, starting with SELECT, WITH, SHOW, DESCRIBE or EXPLAIN,
no keyword that writes or changes the session, no Java reflection. On Spark the parsed plan is
checked too (``check_spark_plan``: a query, or a SHOW / DESCRIBE / EXPLAIN of one), and
path-based sources (``parquet.`/some/path` ``) are off (``spark.sql.runSQLOnFiles=false``).
"""

import logging
import re

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from stedi_assets.storage.lake import Lake
from stedi_assets.storage.landing_reads import FILE_PROBLEM, LANDING_EXTRA_COLUMNS
from stedi_assets.storage.layout import LANDING_TABLES, TABLES

READ_STATEMENTS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN")
# Keywords of statements that write, change the session or reach outside the lake's tables.
WRITE_KEYWORDS = frozenset(
    {
        "INSERT", "UPDATE", "DELETE", "MERGE", "CREATE", "DROP", "ALTER", "TRUNCATE",
        "REPLACE", "UNLOAD", "CALL", "GRANT", "REVOKE", "ADD", "SET", "RESET", "CACHE",
        "UNCACHE", "REFRESH", "LOAD", "MSCK", "OPTIMIZE", "VACUUM", "USE", "DIRECTORY",
        "EXECUTE", "PREPARE", "DEALLOCATE", "COPY", "EXPORT", "IMPORT", "CLEAR",
    }
)  # fmt: skip
# Functions that call Java methods (environment variables, files, anything).
REFLECTION_FUNCTIONS = frozenset({"REFLECT", "JAVA_METHOD", "TRY_REFLECT"})
# Spark plan nodes a read may have at its root, besides a query's.
READ_COMMANDS = frozenset(
    {"ShowTables", "ShowColumns", "ShowNamespaces", "ShowTableProperties", "ShowFunctions",
     "DescribeRelation", "DescribeColumn", "DescribeNamespace", "DescribeFunction",
     "ExplainCommand", "ShowCreateTable", "ShowPartitions", "ShowViews", "ShowCatalogs"}
)  # fmt: skip

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
# String literals and quoted identifiers: their text is no keyword.
_QUOTED = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"|`(?:[^`]|``)*`", re.S)
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


class NotReadOnly(ValueError):
    """A statement ``stedi query`` refuses: it is not a read of the lake's tables."""


def check_read_only(sql: str) -> None:
    """Raises ``NotReadOnly`` unless ``sql`` is one statement that only reads."""
    text = _QUOTED.sub(" '' ", _COMMENTS.sub(" ", sql)).strip().rstrip(";").strip()
    if not text:
        raise NotReadOnly("no statement given")
    if ";" in text:
        raise NotReadOnly("one statement at a time")
    words = [word.upper() for word in _WORD.findall(text)]
    if not words or words[0] not in READ_STATEMENTS:
        raise NotReadOnly(
            f"only statements that read are accepted ({', '.join(READ_STATEMENTS)}), "
            f"not {words[0] if words else text[:20]!r}"
        )
    writes = sorted(WRITE_KEYWORDS.intersection(words))
    if writes:
        raise NotReadOnly(f"{', '.join(writes)} is not accepted: stedi query only reads")
    calls = {m.group(1).upper() for m in re.finditer(r"([A-Za-z_]+)\s*\(", text)}
    reflection = sorted(REFLECTION_FUNCTIONS & calls)
    if reflection:
        raise NotReadOnly(f"{', '.join(reflection)} (Java reflection) is not accepted")


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
