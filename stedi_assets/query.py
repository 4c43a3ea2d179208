"""SQL over the lakehouse tables by name: the local stand-in for Athena."""

from stedi_assets.storage.lake import Lake


def register_views(lake: Lake) -> list[str]:
    """Every catalogued table as a temporary view of its name; returns the names."""
    names = []
    for table in lake.catalog.list_tables():
        lake.read_table(table.name).createOrReplaceTempView(table.name)
        names.append(table.name)
    return names
