"""Direct identifiers: columns that name or reach a person.

They may live in customer tables (which only hold consenting customers), never in the
machine-learning table, and never in metadata shown in the Dagster UI.
"""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

PII_COLUMNS: frozenset[str] = frozenset({"customerName", "email", "user", "phone", "birthDay"})


def mask_pii(df: DataFrame) -> DataFrame:
    """The same columns, with every direct identifier replaced by a mask."""
    return df.select([F.lit("***").alias(c) if c in PII_COLUMNS else F.col(c) for c in df.columns])
