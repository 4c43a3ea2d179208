"""The lake layout: every table of the lakehouse, where it lives and in what format.

Mirrors the Udacity S3 layout, ``<lake>/<entity>/<zone>/``. This is the only place that
knows a table's folder; assets name tables, the storage layer resolves them.
"""

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

Zone = Literal["landing", "quarantine", "trusted", "curated"]

# Quarantine tables hold raw landing lines, which may name people who never consented: they
# live in a catalog database of their own (``<database>_quarantine``), apart from the tables
# researchers query, so that access to one never includes the other.
QUARANTINE_DATABASE_SUFFIX = "_quarantine"
# The Iceberg catalog's name: the JDBC catalog stores it with every table, so every engine
# (Spark, pyiceberg's SqlCatalog) opens the embedded catalog under this one name.
CATALOG_NAME = "lake"


@dataclass(frozen=True)
class TableSpec:
    """A lakehouse table: its name (= asset name = catalog table name) and its place."""

    name: str
    entity: str
    zone: Zone
    # Whose rows these are: (column of this table, customer key it holds: email or
    # serialNumber). Erasing a customer deletes their rows by it.
    owner: tuple[str, str] | None = None

    @property
    def is_landing(self) -> bool:
        """Landing tables are JSON lines written by devices; every other table is Iceberg."""
        return self.zone == "landing"

    @property
    def is_dated_landing(self) -> bool:
        """Reading files in day folders: a day's run reads only the files near its days."""
        return self.is_landing and self.entity != "customer"

    def database(self, research_database: str) -> str:
        """The catalog database (Iceberg namespace) holding this table."""
        if self.zone == "quarantine":
            return research_database + QUARANTINE_DATABASE_SUFFIX
        return research_database

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
        TableSpec("customer_trusted", "customer", "trusted", ("email", "email")),
        TableSpec("accelerometer_trusted", "accelerometer", "trusted", ("user", "email")),
        TableSpec(
            "step_trainer_trusted", "step_trainer", "trusted", ("serialNumber", "serialNumber")
        ),
        TableSpec("customers_curated", "customer", "curated", ("email", "email")),
        TableSpec(
            "machine_learning_curated",
            "machine_learning",
            "curated",
            ("serialNumber", "serialNumber"),
        ),
        # Landing rows that do not fit their DDL, with the reason and the file they came from.
        TableSpec("customer_quarantine", "customer", "quarantine"),
        TableSpec("accelerometer_quarantine", "accelerometer", "quarantine"),
        TableSpec("step_trainer_quarantine", "step_trainer", "quarantine"),
    )
}

LANDING_TABLES: tuple[TableSpec, ...] = tuple(t for t in TABLES.values() if t.is_landing)
ASSET_TABLES: tuple[str, ...] = tuple(t.name for t in TABLES.values() if t.zone != "quarantine")


def quarantine_of(landing_table: str) -> TableSpec:
    """Where the rejected rows of a landing table go."""
    return TABLES[f"{table_spec(landing_table).entity}_quarantine"]


def table_spec(name: str) -> TableSpec:
    """The spec of table ``name``; a clear error for a name that is not a lakehouse table."""
    try:
        return TABLES[name]
    except KeyError:
        known = ", ".join(sorted(TABLES))
        raise KeyError(f"{name!r} is not a lakehouse table; known tables: {known}") from None


# A landing file's day is its day folder: ``.../2022-06-19/...`` or ``.../day=2022-06-19/...``.
DAY_FOLDER_PATTERN = r"(?:day=)?(\d{4}-\d{2}-\d{2})"
_DAY_FOLDER = re.compile(f"^{DAY_FOLDER_PATTERN}$")


def landing_day(path_below_landing: str) -> str | None:
    """The (innermost) day folder of a file below a landing folder, or None."""
    for folder in reversed(path_below_landing.split("/")[:-1]):
        match = _DAY_FOLDER.match(folder)
        if match:
            return match.group(1)
    return None


def is_hidden(path_below_landing: str) -> bool:
    """Whether Spark skips this file: a name or folder starting with ``.`` or ``_``. The
    sensor and the queries skip the same files, so all see what a run reads."""
    return any(part.startswith((".", "_")) for part in path_below_landing.split("/"))


def near_days(first: str, last: str) -> tuple[str, str]:
    """The day folders whose files may hold readings of days ``first..last``: a device's
    upload may cross midnight, so a reading sits in its own day's folder or a neighbour's."""
    before = date.fromisoformat(first) - timedelta(days=1)
    after = date.fromisoformat(last) + timedelta(days=1)
    return before.isoformat(), after.isoformat()
