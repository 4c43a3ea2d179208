"""The checks every trusted reading table must pass, built once for both reading tables."""

from dagster import AssetCheckResult, AssetIn, AssetsDefinition, asset_check
from dagster._core.definitions.asset_checks.asset_checks_definition import AssetChecksDefinition
from pyspark.sql import DataFrame

from stedi_assets.consent import Ownership
from stedi_assets.rules import Rules, duplicate_keys, rule_check


def reading_checks(
    readings_asset: AssetsDefinition, customers_table: str, ownership: Ownership
) -> list[AssetChecksDefinition]:
    """Blocking checks: every reading belongs to a customer of ``customers_table``, none was
    taken before that customer's consent (enforced by the privacy profile), no exact
    duplicates."""
    customers_in = {"customers": AssetIn(customers_table)}

    @asset_check(
        asset=readings_asset,
        name="readings_of_consenting_customers",
        additional_ins=customers_in,
        blocking=True,
        description=f"Every reading belongs to a customer in {customers_table}.",
    )
    def _owned(readings: DataFrame, customers: DataFrame) -> AssetCheckResult:
        return rule_check(ownership.unattributed(readings, customers).count())

    @asset_check(
        asset=readings_asset,
        name="no_reading_before_consent",
        additional_ins=customers_in,
        blocking=True,
        description="No reading from before its owner's research consent (privacy profile; "
        "the udacity profile only reports the count).",
    )
    def _after_consent(readings: DataFrame, customers: DataFrame, rules: Rules) -> AssetCheckResult:
        early = ownership.before_consent(readings, customers)
        return rule_check(early.count(), enforced=rules.privacy)

    @asset_check(
        asset=readings_asset,
        name="no_duplicate_readings",
        blocking=True,
        description="No exact duplicate rows (a file uploaded twice counts once).",
    )
    def _unique(readings: DataFrame) -> AssetCheckResult:
        return rule_check(duplicate_keys(readings))

    return [_owned, _after_consent, _unique]
