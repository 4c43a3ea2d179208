"""SQL over the lakehouse tables by name: the local stand-in for Athena. Tables are read at
main's current snapshot (never a run's unpublished branch); landing tables are views of their
JSON files with the DDL's schema.

``stedi query`` only reads. A statement is checked before any engine sees it
(``check_read_only``): one statement, starting with SELECT, WITH, SHOW, DESCRIBE or EXPLAIN,
no keyword that writes or changes the session, no Java reflection. On Spark the parsed plan is
checked too (``query_spark.check_spark_plan``: a query, or a SHOW / DESCRIBE / EXPLAIN of
one), and path-based sources (``parquet.`/some/path` ``) are off
(``spark.sql.runSQLOnFiles=false``). This module loads neither Spark nor Dagster, so that a
refused statement, and a DuckDB query, start in a fraction of a second.
"""

import re

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
