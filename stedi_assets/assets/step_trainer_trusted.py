"""step_trainer_trusted: Step Trainer readings of the devices of customers_curated.

Rule: readings whose ``serialNumber`` belongs to a customers_curated customer, exact duplicates
once. Privacy profile: also only readings taken at or after that customer's research consent
(ambiguous serials are already absent from customers_curated).
"""

from dagster import AssetExecutionContext, asset
from pyspark.sql import DataFrame

from stedi_assets.assets.landing import conforming
from stedi_assets.assets.reading_checks import reading_checks
from stedi_assets.consent import STEP_TRAINER_OWNERSHIP as OWNERSHIP
from stedi_assets.partitions import DAY_PARTITIONED, daily, readings_of_run_days, single_run
from stedi_assets.rules import Rules

STEP_TRAINER_COLUMNS = ("sensorReadingTime", "serialNumber", "distanceFromObject")


def build_step_trainer_trusted(
    step_trainer_landing: DataFrame, customers_curated: DataFrame, *, privacy: bool
) -> DataFrame:
    readings = conforming(step_trainer_landing, "step_trainer_landing").select(
        *STEP_TRAINER_COLUMNS
    )
    if privacy:
        owned = OWNERSHIP.consenting(readings, customers_curated, privacy=True)
    else:
        # The rubric's rule: a serial held by several curated customers still passes, once.
        owners = customers_curated.select("serialNumber").distinct()
        owned = readings.join(owners, "serialNumber", "left_semi").select(*STEP_TRAINER_COLUMNS)
    # De-duplicated after the owner filter: the same rows, fewer of them shuffled.
    return owned.dropDuplicates()


@asset(
    group_name="trusted",
    kinds={"spark", "iceberg"},
    partitions_def=daily,
    backfill_policy=single_run,
    metadata=DAY_PARTITIONED,
)
def step_trainer_trusted(
    context: AssetExecutionContext,
    step_trainer_landing: DataFrame,
    customers_curated: DataFrame,
    rules: Rules,
) -> DataFrame:
    """Step Trainer readings of curated customers' devices (since their consent, by default),
    partitioned by the reading's UTC day."""
    trusted = build_step_trainer_trusted(
        step_trainer_landing, customers_curated, privacy=rules.privacy
    )
    return readings_of_run_days(context, trusted, "sensorReadingTime")


step_trainer_trusted_checks = reading_checks(step_trainer_trusted, "customers_curated", OWNERSHIP)
