"""Consent joins shared by every reading table: whose reading is it, and did they consent then?

A reading (accelerometer or step trainer) names its owner by one column (``user`` e-mail or
``serialNumber``); ``customers`` holds the consenting owners under ``customer_key`` with their
``shareWithResearchAsOfDate``.
"""

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

CONSENT = "shareWithResearchAsOfDate"


@dataclass(frozen=True)
class Ownership:
    """How readings name their owner, and when each was taken."""

    reading_owner: str  # column of the readings: "user" or "serialNumber"
    customer_key: str  # column of the customers: "email" or "serialNumber"
    reading_time: str  # epoch-ms column of the readings

    def _owners(self, customers: DataFrame) -> DataFrame:
        return customers.select(
            F.col(self.customer_key).alias("_owner"), F.col(CONSENT).alias("_consent")
        )

    def _on(self, readings: DataFrame, owners: DataFrame):  # -> Column
        return readings[self.reading_owner] == owners["_owner"]

    def consenting(self, readings: DataFrame, customers: DataFrame, *, privacy: bool) -> DataFrame:
        """Readings owned by a customer in ``customers``; with ``privacy``, only those taken at
        or after that customer's consent. ``customers`` must hold one row per owner key."""
        owners = self._owners(customers)
        attributed = readings.join(owners, self._on(readings, owners), "inner")
        if privacy:
            attributed = attributed.where(F.col(self.reading_time) >= F.col("_consent"))
        return attributed.select(*readings.columns)

    def violations(
        self, readings: DataFrame, customers: DataFrame, day_column: str | None = None
    ) -> tuple[dict[str | None, int], dict[str | None, int]]:
        """Per day (``day_column``; all under None without one): how many readings have no
        owner in ``customers``, and how many were taken before their owner's consent. One
        pass over the readings for both."""
        owners = self._owners(customers)
        joined = readings.join(owners, self._on(readings, owners), "left")
        day = F.col(day_column) if day_column else F.lit(None).cast("string")
        per_day = (
            joined.groupBy(day.alias("_day"))
            .agg(
                F.count_if(F.col("_owner").isNull()).alias("unattributed"),
                F.count_if(F.col(self.reading_time) < F.col("_consent")).alias("early"),
            )
            .collect()  # one row per day
        )
        unattributed = {row["_day"]: int(row["unattributed"]) for row in per_day}
        early = {row["_day"]: int(row["early"]) for row in per_day}
        return unattributed, early


ACCELEROMETER_OWNERSHIP = Ownership("user", "email", "timestamp")
STEP_TRAINER_OWNERSHIP = Ownership("serialNumber", "serialNumber", "sensorReadingTime")
