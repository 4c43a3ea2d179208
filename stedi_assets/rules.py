"""The rule profile chosen per run: the published Udacity rubric, or the stricter privacy
rules this project enforces by default."""

from collections.abc import Mapping

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, ConfigurableResource
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from stedi_assets.profiles import Profile


class Rules(ConfigurableResource):
    """Which rule profile a run applies; set per run in the launchpad or with ``--profile``."""

    profile: Profile = Profile.privacy

    @property
    def privacy(self) -> bool:
        return self.profile == Profile.privacy


# Violations per day of a day-partitioned table (None: rows without a day).
DayCounts = Mapping[str | None, int]
DAYS_NAMED = 20


def rule_check(
    violations: int | DayCounts,
    *,
    enforced: bool = True,
    spec: AssetCheckSpec | None = None,
    what: str | None = None,
    **metadata: int | str | float,
) -> AssetCheckResult:
    """A check result for a rule: passes with no violations.

    An enforced rule fails with ERROR severity, which stops downstream assets when the check
    is blocking; a rule the profile does not enforce only reports (WARN). ``spec`` names the
    check when one step evaluates several. ``what`` says what a violation is (table, column,
    rule; never a direct identifier): a failing result's description is ``what: count``.
    ``violations`` per day (one result covers every day of a run) names the failing days in
    the ``days`` metadata and the description.
    """
    days = None
    if not isinstance(violations, int):
        failing = {day: n for day, n in violations.items() if n}
        violations = sum(failing.values())
        days = ", ".join(
            f"{day or 'no day'} ({n})" for day, n in sorted(failing.items(), key=_by_day)
        )
        days = _first_named(days) or "none"
        metadata = {**metadata, "days": days}
    description = f"{what}: {violations}" if violations and what else None
    if description and days:
        description += f" (days: {days})"
    return AssetCheckResult(
        passed=violations == 0,
        severity=AssetCheckSeverity.ERROR if enforced else AssetCheckSeverity.WARN,
        metadata={"violations": violations, **metadata},
        description=description,
        **({"check_name": spec.name, "asset_key": spec.asset_key} if spec else {}),
    )


def _by_day(item: tuple[str | None, int]) -> str:
    return item[0] or ""


def _first_named(days: str) -> str:
    named = days.split(", ")
    more = len(named) - DAYS_NAMED
    return ", ".join(named[:DAYS_NAMED]) + (f", and {more} more days" if more > 0 else "")


def duplicate_keys(df: DataFrame, *keys: str) -> int:
    """Rows beyond the first of each key (all columns when none are named): 0 when unique.
    One aggregation, one Spark job."""
    per_key = df.groupBy(*(keys or df.columns)).count()
    extra = per_key.agg(F.coalesce(F.sum(F.col("count") - 1), F.lit(0)).alias("extra"))
    return int(extra.first()["extra"])


def duplicate_rows_per_day(df: DataFrame, day_column: str | None) -> dict[str | None, int]:
    """Exact duplicate rows (beyond the first) of each day (all under None without a day
    column): one aggregation, one Spark job."""
    per_row = df.groupBy(*df.columns).count().where(F.col("count") > 1)
    day = F.col(day_column) if day_column else F.lit(None).cast("string")
    per_day = per_row.groupBy(day.alias("_day")).agg(F.sum(F.col("count") - 1).alias("extra"))
    return {row["_day"]: int(row["extra"]) for row in per_day.collect()}  # one per day
