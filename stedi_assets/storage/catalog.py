"""The table catalog: table names -> location, format, columns and partitions.

Glue plays this part in AWS; ``LocalCatalog`` is the embedded default, a SQLite file, so
the lakehouse needs no service at all on a laptop. Both implement ``CatalogResource``; the IO
manager and ``stedi query`` only ever see that interface.
"""

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dagster import ConfigurableResource

TableFormat = Literal["parquet", "json"]


@dataclass(frozen=True)
class CatalogColumn:
    name: str
    type: str  # Hive type string, as Glue and Athena spell it (bigint, string, double, ...)


@dataclass(frozen=True)
class CatalogPartition:
    values: tuple[str, ...]
    location: str


@dataclass(frozen=True)
class CatalogTable:
    name: str
    location: str
    format: TableFormat
    columns: tuple[CatalogColumn, ...]
    partition_keys: tuple[CatalogColumn, ...] = ()
    ddl: str | None = field(default=None, compare=False)  # landing tables keep their DDL text


class CatalogResource(ConfigurableResource):
    """What every catalog offers. Writes report whether anything changed."""

    database: str = "stedi"

    def upsert_table(self, table: CatalogTable) -> bool:
        raise NotImplementedError

    def get_table(self, name: str) -> CatalogTable | None:
        raise NotImplementedError

    def list_tables(self) -> list[CatalogTable]:
        raise NotImplementedError

    def upsert_partitions(self, table: str, partitions: Sequence[CatalogPartition]) -> int:
        """Registers new partitions and updates changed ones; returns how many changed."""
        raise NotImplementedError

    def list_partitions(self, table: str) -> list[CatalogPartition]:
        raise NotImplementedError

    def require_table(self, name: str) -> CatalogTable:
        table = self.get_table(name)
        if table is None:
            known = ", ".join(t.name for t in self.list_tables()) or "none yet"
            raise LookupError(
                f"table {name!r} is not in the catalog (materialize it first); "
                f"catalogued tables: {known}"
            )
        return table


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tables (
    name TEXT PRIMARY KEY,
    location TEXT NOT NULL,
    format TEXT NOT NULL,
    columns TEXT NOT NULL,
    partition_keys TEXT NOT NULL,
    ddl TEXT
);
CREATE TABLE IF NOT EXISTS partitions (
    table_name TEXT NOT NULL REFERENCES tables(name),
    partition_values TEXT NOT NULL,
    location TEXT NOT NULL,
    PRIMARY KEY (table_name, partition_values)
);
"""


def _columns_json(columns: Sequence[CatalogColumn]) -> str:
    return json.dumps([[c.name, c.type] for c in columns])


def _columns_from_json(text: str) -> tuple[CatalogColumn, ...]:
    return tuple(CatalogColumn(name, type_) for name, type_ in json.loads(text))


class LocalCatalog(CatalogResource):
    """An embedded catalog in one SQLite file.

    Every write is one SQLite transaction, so two runs writing at once leave it consistent.
    """

    path: str

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # A generous timeout: a concurrent run holds the write lock for milliseconds.
        with closing(sqlite3.connect(self.path, timeout=60, isolation_level=None)) as conn:
            conn.executescript(_SCHEMA)
            yield conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def upsert_table(self, table: CatalogTable) -> bool:
        row = (
            table.location,
            table.format,
            _columns_json(table.columns),
            _columns_json(table.partition_keys),
            table.ddl,
        )
        with self._transaction() as conn:
            current = conn.execute(
                "SELECT location, format, columns, partition_keys, ddl FROM tables WHERE name = ?",
                (table.name,),
            ).fetchone()
            if current == row:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO tables VALUES (?, ?, ?, ?, ?, ?)", (table.name, *row)
            )
            return True

    def get_table(self, name: str) -> CatalogTable | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM tables WHERE name = ?", (name,)).fetchone()
        return _table_from_row(row) if row else None

    def list_tables(self) -> list[CatalogTable]:
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM tables ORDER BY name").fetchall()
        return [_table_from_row(row) for row in rows]

    def upsert_partitions(self, table: str, partitions: Sequence[CatalogPartition]) -> int:
        changed = 0
        with self._transaction() as conn:
            for partition in partitions:
                values = json.dumps(list(partition.values))
                current = conn.execute(
                    "SELECT location FROM partitions WHERE table_name = ? AND partition_values = ?",
                    (table, values),
                ).fetchone()
                if current == (partition.location,):
                    continue
                conn.execute(
                    "INSERT OR REPLACE INTO partitions VALUES (?, ?, ?)",
                    (table, values, partition.location),
                )
                changed += 1
        return changed

    def list_partitions(self, table: str) -> list[CatalogPartition]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT partition_values, location FROM partitions WHERE table_name = ? "
                "ORDER BY partition_values",
                (table,),
            ).fetchall()
        return [CatalogPartition(tuple(json.loads(values)), location) for values, location in rows]


def _table_from_row(row: tuple) -> CatalogTable:
    name, location, format_, columns, partition_keys, ddl = row
    return CatalogTable(
        name=name,
        location=location,
        format=format_,
        columns=_columns_from_json(columns),
        partition_keys=_columns_from_json(partition_keys),
        ddl=ddl,
    )
