"""SQL over the lakehouse tables by name: the local stand-in for Athena. Tables are read at
main's current snapshot (never a run's unpublished branch); landing tables are views of their
JSON files with the DDL's schema."""

from stedi_assets.storage.lake import Lake
from stedi_assets.storage.landing_reads import LANDING_EXTRA_COLUMNS
from stedi_assets.storage.layout import LANDING_TABLES


def register_views(lake: Lake) -> list[str]:
    """Every table of the lake as a temporary view of its name; returns the names."""
    names = []
    for table in lake.tables():
        lake.read_main(table).createOrReplaceTempView(table)
        names.append(table)
    for spec in LANDING_TABLES:
        try:
            landing = lake.read_landing(spec.name)
        except FileNotFoundError:
            continue
        landing.drop(*LANDING_EXTRA_COLUMNS).createOrReplaceTempView(spec.name)
        names.append(spec.name)
    return sorted(names)
