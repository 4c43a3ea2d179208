"""The landing DDL in ``sql/`` is the single source of the landing schemas and of their
column descriptions."""

import pytest

from stedi_assets.storage.ddl import landing_ddl, parse_ddl
from stedi_assets.storage.layout import LANDING_TABLES

STATEMENT = """CREATE EXTERNAL TABLE IF NOT EXISTS `t` (
{columns}
)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION '${{lake}}/t/landing/'
"""


@pytest.mark.parametrize("table", [spec.name for spec in LANDING_TABLES])
def test_every_landing_column_is_described_in_its_ddl(table: str) -> None:
    ddl = landing_ddl(table)
    assert ddl.columns
    undescribed = [c.name for c in ddl.columns if not c.comment]
    assert not undescribed, f"sql/{table}.sql: columns without COMMENT: {undescribed}"
    assert [f.name for f in ddl.spark_schema()] == [c.name for c in ddl.columns]


def test_a_comment_may_hold_commas_and_parentheses() -> None:
    columns = "  `a` string COMMENT 'one, two (three)',\n  `b` bigint,\n  `c` int COMMENT 'x'"
    ddl = parse_ddl("t", STATEMENT.format(columns=columns))
    assert [(c.name, c.hive_type, c.comment) for c in ddl.columns] == [
        ("a", "string", "one, two (three)"),
        ("b", "bigint", ""),
        ("c", "int", "x"),
    ]
    assert ddl.descriptions() == {"a": "one, two (three)", "c": "x"}


@pytest.mark.parametrize(
    ("columns", "named"),
    [
        ("  `a` string,\n  `b` int junk", "`b` int junk"),
        ("  `a` sting", "sting"),
        ("  `a` string COMMENT 'unclosed", "COMMENT 'unclosed"),
    ],
)
def test_a_column_the_parser_cannot_read_is_named_in_the_error(columns: str, named: str) -> None:
    with pytest.raises(ValueError, match=r"sql/t\.sql") as error:
        parse_ddl("t", STATEMENT.format(columns=columns))
    assert named in str(error.value)
