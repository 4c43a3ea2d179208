"""The lake layout: every table of the lakehouse, where it lives and in what format.

Mirrors the Udacity S3 layout, ``<lake>/<entity>/<zone>/``. This is the only place that
knows a table's folder; assets name tables, the storage layer resolves them.
"""

from dataclasses import dataclass
from typing import Literal

Zone = Literal["landing", "trusted", "curated"]


@dataclass(frozen=True)
class TableSpec:
    """A lakehouse table: its name (= asset name = catalog table name) and its place."""

    name: str
    entity: str
    zone: Zone

    @property
    def is_landing(self) -> bool:
        """Landing tables are JSON lines written by devices; every other table is Parquet."""
        return self.zone == "landing"

    @property
    def relative_path(self) -> str:
        return f"{self.entity}/{self.zone}"

    def location(self, lake: str) -> str:
        """The table's folder under ``lake`` (a local path or a URI), with a trailing slash."""
        return f"{lake.rstrip('/')}/{self.relative_path}/"


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec("customer_landing", "customer", "landing"),
        TableSpec("accelerometer_landing", "accelerometer", "landing"),
        TableSpec("step_trainer_landing", "step_trainer", "landing"),
        TableSpec("customer_trusted", "customer", "trusted"),
        TableSpec("accelerometer_trusted", "accelerometer", "trusted"),
        TableSpec("step_trainer_trusted", "step_trainer", "trusted"),
        TableSpec("customers_curated", "customer", "curated"),
        TableSpec("machine_learning_curated", "machine_learning", "curated"),
    )
}

LANDING_TABLES: tuple[TableSpec, ...] = tuple(t for t in TABLES.values() if t.is_landing)


def table_spec(name: str) -> TableSpec:
    """The spec of table ``name``; a clear error for a name that is not a lakehouse table."""
    try:
        return TABLES[name]
    except KeyError:
        known = ", ".join(sorted(TABLES))
        raise KeyError(f"{name!r} is not a lakehouse table; known tables: {known}") from None
