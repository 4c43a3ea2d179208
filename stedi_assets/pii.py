"""Direct identifiers: columns that name or reach a person.

They may live in customer tables (which only hold consenting customers), never in the
machine-learning table, and never in metadata shown in the Dagster UI (nor may serial numbers).
"""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

PII_COLUMNS: frozenset[str] = frozenset({"customerName", "email", "user", "phone", "birthDay"})

# A device's serial number reaches its owner too. The tables keep it (machine_learning_curated
# pairs readings by it, and erasure removes it with the customer), but a preview does not show
# it: Dagster keeps materialization metadata in its event log, which erasure cannot reach.
DEVICE_IDENTIFIERS: frozenset[str] = frozenset({"serialNumber"})

# A quarantined line as it arrived: identifiers and all, of consenting customers or not.
RAW_RECORDS: frozenset[str] = frozenset({"record"})

PREVIEW_MASKED = PII_COLUMNS | DEVICE_IDENTIFIERS | RAW_RECORDS


def mask_pii(df: DataFrame) -> DataFrame:
    """The same columns, with every direct identifier, serial number and raw quarantined line
    replaced by a mask."""
    return df.select(
        [F.lit("***").alias(c) if c in PREVIEW_MASKED else F.col(c) for c in df.columns]
    )
