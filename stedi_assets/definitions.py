"""Assembles the lakehouse: assets, checks, the job and the resources (lazily, in one place)."""

from dagster import AssetSelection, Definitions, define_asset_job, definitions, in_process_executor

from stedi_assets.assets.accelerometer_trusted import (
    accelerometer_trusted,
    accelerometer_trusted_checks,
)
from stedi_assets.assets.consent_audit import no_rows_of_non_consenting_customers
from stedi_assets.assets.customer_trusted import customer_trusted, customer_trusted_checks
from stedi_assets.assets.customers_curated import customers_curated, customers_curated_checks
from stedi_assets.assets.landing import landing_assets, landing_checks, quarantine_assets
from stedi_assets.assets.machine_learning_curated import (
    machine_learning_curated,
    machine_learning_curated_checks,
)
from stedi_assets.assets.published import lakehouse_published
from stedi_assets.assets.reconciliation import reconciliation_checks
from stedi_assets.assets.step_trainer_trusted import (
    step_trainer_trusted,
    step_trainer_trusted_checks,
)
from stedi_assets.sensors import LAKEHOUSE_JOB, day_partitions, landing_sensor
from stedi_assets.settings import Settings, build_resources

ASSETS = [
    *landing_assets,
    *quarantine_assets,
    customer_trusted,
    accelerometer_trusted,
    customers_curated,
    step_trainer_trusted,
    machine_learning_curated,
    lakehouse_published,
]
CHECKS = [
    *landing_checks,
    *customer_trusted_checks,
    accelerometer_trusted_checks,
    *customers_curated_checks,
    step_trainer_trusted_checks,
    *machine_learning_curated_checks,
    *reconciliation_checks,
    no_rows_of_non_consenting_customers,
]

stedi_lakehouse = define_asset_job(
    LAKEHOUSE_JOB,
    selection=AssetSelection.all(),
    description="Every table from landing to machine_learning_curated, with its checks.",
)


def build_definitions(settings: Settings) -> Definitions:
    return Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=[stedi_lakehouse],
        sensors=[landing_sensor, day_partitions],
        resources=build_resources(settings),
        # One process, so one Spark session (one JVM) serves the whole run.
        executor=in_process_executor,
    )


@definitions
def defs() -> Definitions:
    """Built when Dagster loads the code location, from the environment as it is then."""
    return build_definitions(Settings.from_env())
