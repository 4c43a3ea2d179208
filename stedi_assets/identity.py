"""Who a record belongs to: the customer identity that every rule joins, de-duplicates and
withdraws on.

A customer is one person however their e-mail is written. An e-mail (``email``, ``user``) or a
serial number (``serialNumber``) identifies a customer after normalization:

1. leading and trailing white space is removed: ASCII white space (space, tab, line feed,
   vertical tab, form feed, carriage return), every Unicode space or separator character
   (category Z: no-break space U+00A0, the U+2000 to U+200A spaces, U+2028, U+2029, U+202F,
   U+205F, U+3000, …), next line U+0085, zero-width space U+200B and the byte-order mark
   U+FEFF. Inner white space is kept (``"a b@x.com"`` is not ``"ab@x.com"``);
2. the rest is lower-cased with Unicode's default case mapping (Spark's ``lower``, the same on
   every machine: no locale);
3. nothing left means no identity (null): such a record belongs to nobody.

Serial numbers (UUIDs in practice) follow the same rule, so ``"ABC-1 "`` is ``"abc-1"``. The
rules normalize the identity columns as they read landing, so every table past landing holds
normalized identities. The consent audit normalizes by its own code (``assets/consent_audit``),
and a test holds the two to the same answers.
"""

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

# The white space trimmed from identities, as one set of characters: ASCII white space, every
# Unicode space or separator (category Z), next line, zero-width space and the byte-order mark.
# A set trimmed at both ends (Spark's btrim) costs a few comparisons per value; the regular
# expression used before scanned the whole value, and thread dumps of the largest steps at
# SF50 caught it inside their hash aggregates.
WHITE_SPACE = (
    " \t\n\x0b\x0c\r"  # ASCII (Java's \s)
    "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"  # the rest of category Z (U+0020 is above)
    "\u0085\u200b\ufeff"
)

# The identity columns of each landing table.
IDENTITY_COLUMNS: dict[str, tuple[str, ...]] = {
    "customer_landing": ("email", "serialNumber"),
    "accelerometer_landing": ("user",),
    "step_trainer_landing": ("serialNumber",),
}


def identity(value: Column) -> Column:
    """The normalized identity of an e-mail or serial number column (null when empty)."""
    trimmed = F.btrim(value, F.lit(WHITE_SPACE))
    return F.nullif(F.lower(trimmed), F.lit(""))


def with_identities(landing: DataFrame, table: str) -> DataFrame:
    """``landing`` with the identity columns of landing table ``table`` normalized."""
    return landing.withColumns(
        {column: identity(F.col(column)) for column in IDENTITY_COLUMNS[table]}
    )
