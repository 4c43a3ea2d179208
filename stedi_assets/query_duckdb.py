"""``stedi query`` without Spark, on a local lake: pyiceberg scans the Iceberg tables (main's
current snapshot) into Arrow, and DuckDB answers the SQL. No JVM starts, so a count answers in
about a second.

Only the tables the statement names are loaded. Landing tables are read from their JSON files
with the DDL's columns (lines that do not parse are skipped; ``--engine spark`` shows them as
nulls). Once the tables are loaded, DuckDB's access to files and the network is turned off and
its configuration locked, so a statement cannot read anything but those tables.
"""

import logging
import re
from pathlib import Path

import duckdb
from pyiceberg.catalog.sql import SqlCatalog

from stedi_assets.storage.ddl import landing_ddl
from stedi_assets.storage.filesystem import walk_local
from stedi_assets.storage.layout import CATALOG_NAME, TABLES

# The catalog is Iceberg's JDBC catalog, which Spark writes in its version-0 layout; pyiceberg
# warns of that on every load and reads it as it is (migrating it would write to the lake).
logging.getLogger("pyiceberg.catalog.sql").setLevel(logging.ERROR)

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
    return [
        str(path)
        for path in files
        if not any(part.startswith((".", "_")) for part in path.relative_to(folder).parts)
    ]


def query_local(lake_root: str, database: str, sql: str, limit: int) -> QueryResult:
    """Runs read-only ``sql`` (checked by the caller) over the local lake's tables."""
    lake = Path(lake_root)
    catalog_file = lake / "_catalog" / "catalog.sqlite"
    catalog = None
    existing: set[str] = set()
    if catalog_file.is_file():  # none before the first run
        catalog = SqlCatalog(
            CATALOG_NAME, uri=f"sqlite:///{catalog_file}", warehouse=f"file://{lake}"
        )
        namespaces = {namespace[0] for namespace in catalog.list_namespaces()}
        for namespace in {spec.database(database) for spec in TABLES.values()} & namespaces:
            existing |= {
                name
                for _, name in catalog.list_tables(namespace)
                if name in TABLES and TABLES[name].database(database) == namespace
            }
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
        elif catalog is not None and name in existing:
            arrow = (
                catalog.load_table(f"{TABLES[name].database(database)}.{name}").scan().to_arrow()
            )
            connection.register(name, arrow)
    # From here on the statement sees the tables above and nothing else.
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")
    result = connection.execute(sql)
    columns = [d[0] for d in result.description or []]
    return QueryResult(columns, result.fetchmany(limit))
