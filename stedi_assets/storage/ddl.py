"""Landing schemas, read from the Athena DDL in ``sql/`` (the single source of truth).

Both Spark's read schema and the catalog's column list for the landing tables come from here,
so a field added to a ``sql/*.sql`` file reaches every consumer at once.
"""

import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pyspark loads only when a schema is built (stedi query need not load it)
    from pyspark.sql import types as T

SQL_DIR = Path(os.environ.get("STEDI_SQL_DIR", Path(__file__).resolve().parents[2] / "sql"))

# Hive/Athena primitive type -> Spark type (by class name). Only what landing JSON can carry.
_HIVE_TO_SPARK: dict[str, str] = {
    "string": "StringType",
    "bigint": "LongType",
    "int": "IntegerType",
    "integer": "IntegerType",
    "smallint": "ShortType",
    "double": "DoubleType",
    "float": "FloatType",
    "boolean": "BooleanType",
    "date": "DateType",
    "timestamp": "TimestampType",
}

_COLUMNS = re.compile(
    r"CREATE\s+EXTERNAL\s+TABLE[^(]*\((?P<body>.*?)\)\s*ROW\s+FORMAT", re.I | re.S
)
# One column: `name` type [COMMENT 'text'], then a comma or the end (a comment may hold commas).
_COLUMN = re.compile(
    r"\s*`?(?P<name>\w+)`?\s+(?P<type>\w+)(?:\s+COMMENT\s+'(?P<comment>[^']*)')?\s*(?:,|$)",
    re.I,
)
_SERDE = re.compile(r"ROW\s+FORMAT\s+SERDE\s+'(?P<serde>[^']+)'", re.I)
_LOCATION = re.compile(r"LOCATION\s+'(?P<location>[^']+)'", re.I)


@dataclass(frozen=True)
class Column:
    name: str
    hive_type: str
    comment: str = ""  # the column's description (COMMENT in the DDL)


@dataclass(frozen=True)
class LandingDDL:
    """What a landing table's ``CREATE EXTERNAL TABLE`` statement says."""

    table: str
    columns: tuple[Column, ...]
    serde: str
    location_template: str
    text: str

    def location(self, lake: str) -> str:
        return self.location_template.replace("${lake}", lake.rstrip("/"))

    def descriptions(self) -> dict[str, str]:
        """Column name -> its COMMENT."""
        return {c.name: c.comment for c in self.columns if c.comment}

    def spark_schema(self) -> "T.StructType":
        from pyspark.sql import types

        return types.StructType(
            [
                types.StructField(c.name, getattr(types, _HIVE_TO_SPARK[c.hive_type])(), True)
                for c in self.columns
            ]
        )


def parse_ddl(table: str, text: str) -> LandingDDL:
    """Parse one Athena DDL statement; errors name the table and what is wrong."""
    without_comments = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    body = _COLUMNS.search(without_comments)
    serde = _SERDE.search(without_comments)
    location = _LOCATION.search(without_comments)
    if not (body and serde and location):
        raise ValueError(
            f"sql/{table}.sql is not a CREATE EXTERNAL TABLE statement with columns, "
            "ROW FORMAT SERDE and LOCATION"
        )
    columns = []
    text_of_columns, position = body.group("body").strip(), 0
    while position < len(text_of_columns):
        match = _COLUMN.match(text_of_columns, position)
        if not match or match.end() == position:
            rest = text_of_columns[position:].strip().split("\n", 1)[0]
            raise ValueError(f"sql/{table}.sql: cannot read column definition {rest!r}")
        hive_type = match.group("type").lower()
        if hive_type not in _HIVE_TO_SPARK:
            raise ValueError(f"sql/{table}.sql: unsupported column type {hive_type!r}")
        columns.append(Column(match.group("name"), hive_type, match.group("comment") or ""))
        position = match.end()
    return LandingDDL(
        table=table,
        columns=tuple(columns),
        serde=serde.group("serde"),
        location_template=location.group("location"),
        text=text,
    )


@cache
def landing_ddl(table: str) -> LandingDDL:
    """The parsed DDL of landing table ``table`` (e.g. ``customer_landing``)."""
    path = SQL_DIR / f"{table}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no DDL for landing table {table!r}: {path} does not exist")
    return parse_ddl(table, path.read_text(encoding="utf-8"))
