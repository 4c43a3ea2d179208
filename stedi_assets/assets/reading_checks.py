"""The checks every trusted reading table must pass, built once for both reading tables."""

from collections.abc import Iterator

from dagster import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSpec,
    AssetIn,
    AssetsDefinition,
    multi_asset_check,
)
from pyspark.sql import DataFrame

from stedi_assets.consent import Ownership
from stedi_assets.rules import Rules, duplicate_keys, rule_check


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

    @multi_asset_check(
        specs=[owned, after_consent, unique],
        name=f"{name}_checks",
        ins={"readings": AssetIn(table), "customers": AssetIn(customers_table)},
    )
    def _checks(
        readings: DataFrame, customers: DataFrame, rules: Rules
    ) -> Iterator[AssetCheckResult]:
        unattributed, early = ownership.violations(readings, customers)
        yield rule_check(
            unattributed,
            spec=owned,
            what=f"readings of {name} whose {ownership.reading_owner} is no "
            f"{ownership.customer_key} of {customers_table}",
        )
        yield rule_check(
            early,
            spec=after_consent,
            enforced=rules.privacy,
            what=f"readings of {name} taken ({ownership.reading_time}) before their owner's "
            "shareWithResearchAsOfDate",
        )
        yield rule_check(
            duplicate_keys(readings), spec=unique, what=f"exact duplicate rows in {name}"
        )

    return _checks
