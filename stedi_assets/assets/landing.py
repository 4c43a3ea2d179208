"""The landing zone: JSON lines exactly as devices and the website upload them.

Landing assets do not copy data; materializing one reads its files with the schema from
``sql/`` and registers the table in the catalog. Lines that do not fit the DDL, or lack the
fields that identify a record, are reported by a (non-blocking) conformance check: downstream
rules drop them, and good lines are never held back by bad ones.
"""

from dagster import AssetCheckResult, AssetsDefinition, asset, asset_check
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from stedi_assets.rules import rule_check
from stedi_assets.storage.lake import Lake
from stedi_assets.storage.spark_tables import CORRUPT_RECORD

# The fields without which a record cannot be attributed to anyone.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "customer_landing": ("email",),
    "accelerometer_landing": ("user", "timestamp"),
    "step_trainer_landing": ("sensorReadingTime", "serialNumber"),
}


def nonconforming(table: str) -> Column:
    """Rows Spark could not parse against the DDL, or that lack a required field."""
    condition = F.col(CORRUPT_RECORD).isNotNull()
    for field in REQUIRED_FIELDS[table]:
        condition = condition | F.col(field).isNull()
    return condition


def _landing_asset(table: str, description: str) -> AssetsDefinition:
    @asset(name=table, group_name="landing", kinds={"spark", "json"}, description=description)
    def _asset(lake: Lake) -> DataFrame:
        return lake.read_landing(table)

    return _asset


customer_landing = _landing_asset(
    "customer_landing", "Customer records from the STEDI website, with their consent dates."
)
accelerometer_landing = _landing_asset(
    "accelerometer_landing", "Phone accelerometer readings (x, y, z) per user e-mail."
)
step_trainer_landing = _landing_asset(
    "step_trainer_landing", "Step Trainer distance readings per device serial number."
)


def _conformance_check(landing: AssetsDefinition):  # -> AssetChecksDefinition
    table = landing.key.path[-1]

    @asset_check(
        asset=landing,
        name="conforms_to_ddl",
        description=f"Rows of {table} that do not fit sql/{table}.sql or lack "
        f"{', '.join(REQUIRED_FIELDS[table])}; they are dropped downstream.",
    )
    def _check(landing_rows: DataFrame) -> AssetCheckResult:
        return rule_check(int(landing_rows.where(nonconforming(table)).count()), enforced=False)

    # The check's input is named after the asset it reads.
    return _check


landing_assets = [customer_landing, accelerometer_landing, step_trainer_landing]
landing_checks = [_conformance_check(a) for a in landing_assets]
