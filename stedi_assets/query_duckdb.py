"""``stedi query`` without Spark, on a local lake: pyiceberg scans the Iceberg tables (main's
current snapshot) into Arrow, and DuckDB answers the SQL. No JVM starts, so a count answers in
a few seconds, most of them imports.

The embedded catalog is Iceberg's JDBC catalog in SQLite: one row per table with the location
of its current metadata file. It is read here with Python's sqlite3 (read-only), and each named
table is opened from that file (pyiceberg's ``StaticTable``): the same tables pyiceberg's
``SqlCatalog`` would give, without loading SQLAlchemy for one SELECT.

Only the tables the statement names are loaded. Landing tables are read from their JSON files
with the DDL's columns (lines that do not parse are skipped; ``--engine spark`` shows them as
nulls). Once the tables are loaded, DuckDB's access to files and the network is turned off and
its configuration locked, so a statement cannot read anything but those tables.
"""

import re
import sqlite3
from pathlib import Path

import duckdb
from pyiceberg.table import StaticTable

from stedi_assets.storage.ddl import landing_ddl
from stedi_assets.storage.filesystem import walk_local
from stedi_assets.storage.layout import CATALOG_NAME, TABLES, is_hidden

# Hive types of the DDL in sql/ -> DuckDB types.
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "double": "DOUBLE",
    "float": "FLOAT",
    "boolean": "BOOLEAN",
}


class QueryResult:
    def __init__(self, columns: list[str], rows: list[tuple]) -> None:
        self.columns, self.rows = columns, rows


def _named_tables(sql: str) -> list[str]:
    words = {word.lower() for word in re.findall(r"[A-Za-z_][A-Za-z_0-9]*", sql)}
    return [name for name in TABLES if name in words]


def _landing_files(lake: Path, table: str) -> list[str]:
    folder = lake / TABLES[table].relative_path
    if not folder.is_dir():
        return []
    files = walk_local(folder).files
    return [str(path) for path in files if not is_hidden(path.relative_to(folder).as_posix())]


def _current_metadata(catalog_file: Path) -> dict[tuple[str, str], str]:
    """(namespace, table) -> the metadata file of the table's current state, for every table
    of the lake's catalog; nothing before the first run (no catalog file yet)."""
    if not catalog_file.is_file():
        return {}
    with sqlite3.connect(f"file:{catalog_file}?mode=ro", uri=True) as catalog:
        rows = catalog.execute(
            "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables "
            "WHERE catalog_name = ? AND metadata_location IS NOT NULL",
            (CATALOG_NAME,),
        ).fetchall()
    return {(namespace, name): location for namespace, name, location in rows}


def query_local(
    lake_root: str, catalog_file: str, database: str, sql: str, limit: int
) -> QueryResult:
    """Runs read-only ``sql`` (checked by the caller) over the local lake's tables, as its
    embedded catalog ``catalog_file`` has them."""
    lake = Path(lake_root)
    metadata = _current_metadata(Path(catalog_file))
    connection = duckdb.connect()
    for name in _named_tables(sql):
        if TABLES[name].is_landing:
            files = _landing_files(lake, name)
            columns = {c.name: DUCKDB_TYPES[c.hive_type] for c in landing_ddl(name).columns}
            if not files:
                continue
            connection.execute(
                f"CREATE TABLE {name} AS SELECT * FROM read_json(?, columns = ?, "
                "format = 'newline_delimited', ignore_errors = true)",
                [files, columns],
            )
        elif (location := metadata.get((TABLES[name].database(database), name))) is not None:
            connection.register(name, StaticTable.from_metadata(location).scan().to_arrow())
    # From here on the statement sees the tables above and nothing else.
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")
    result = connection.execute(sql)
    columns = [d[0] for d in result.description or []]
    return QueryResult(columns, result.fetchmany(limit))
