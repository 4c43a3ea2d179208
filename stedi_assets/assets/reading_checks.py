"""The checks every trusted reading table must pass, built once for both reading tables."""

from collections.abc import Iterator

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSpec,
    AssetIn,
    AssetsDefinition,
    multi_asset_check,
)
from pyspark.sql import DataFrame

from stedi_assets.consent import Ownership
from stedi_assets.partitions import DAY_COLUMN
from stedi_assets.rules import Rules, duplicate_rows_per_day, rule_check


def reading_checks(
    readings_asset: AssetsDefinition, customers_table: str, ownership: Ownership
) -> AssetChecksDefinition:
    """Blocking checks: every reading belongs to a customer of ``customers_table``, none was
    taken before that customer's consent (enforced by the privacy profile), no exact
    duplicates. One step: the first two share one pass over the table."""
    table = readings_asset.key
    name = table.path[-1]
    owned = AssetCheckSpec(
        "readings_of_consenting_customers",
        asset=table,
        additional_deps=[customers_table],
        blocking=True,
        description=f"Every reading belongs to a customer in {customers_table}.",
    )
    after_consent = AssetCheckSpec(
        "no_reading_before_consent",
        asset=table,
        additional_deps=[customers_table],
        blocking=True,
        description="No reading from before its owner's research consent (privacy profile; "
        "the udacity profile only reports the count).",
    )
    unique = AssetCheckSpec(
        "no_duplicate_readings",
        asset=table,
        blocking=True,
        description="No exact duplicate rows (a file uploaded twice counts once).",
    )

    # Subsettable: each check can be executed alone from the asset's page.
    @multi_asset_check(
        specs=[owned, after_consent, unique],
        name=f"{name}_checks",
        ins={"readings": AssetIn(table), "customers": AssetIn(customers_table)},
        can_subset=True,
    )
    def _checks(
        context: AssetCheckExecutionContext,
        readings: DataFrame,
        customers: DataFrame,
        rules: Rules,
    ) -> Iterator[AssetCheckResult]:
        selected = {key.name for key in context.selected_asset_check_keys}
        # One result for every day of the run: the failing days are named in it.
        day = DAY_COLUMN if DAY_COLUMN in readings.columns else None
        if selected & {owned.name, after_consent.name}:
            unattributed, early = ownership.violations(readings, customers, day)
            if owned.name in selected:
                yield rule_check(
                    unattributed,
                    spec=owned,
                    what=f"readings of {name} whose {ownership.reading_owner} is no "
                    f"{ownership.customer_key} of {customers_table}",
                )
            if after_consent.name in selected:
                yield rule_check(
                    early,
                    spec=after_consent,
                    enforced=rules.privacy,
                    what=f"readings of {name} taken ({ownership.reading_time}) before their "
                    "owner's shareWithResearchAsOfDate",
                )
        if unique.name in selected:
            yield rule_check(
                duplicate_rows_per_day(readings, day),
                spec=unique,
                what=f"exact duplicate rows in {name}",
            )

    return _checks
