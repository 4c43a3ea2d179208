"""The ``stedi`` command, called in-process (sharing the suite's Spark session)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stedi_assets.cli import main
from stedi_assets.query import NotReadOnly, check_read_only
from stedi_assets.storage.iceberg import CatalogConfig
from stedi_assets_tests.conftest import REPO, lake_catalog, published_table


def test_simulate_run_and_query_a_small_lake(
    spark, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    monkeypatch.setenv("STEDI_SHUFFLE_PARTITIONS", "2")

    assert main(["simulate", "--lake", str(lake), "--customers", "16", "--days", "2"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (lake / "customer" / "landing").is_dir()

    assert main(["run", "--lake", str(lake)]) == 0
    report = capsys.readouterr().out
    for table in ("customer_landing", "customers_curated", "machine_learning_curated"):
        assert table in report
    assert "FAILED" not in report and "same_customer_pairing" in report
    # How long each step took: 12 asset steps (8 tables, 3 quarantines, the publish step) and
    # 19 check steps (13 of the rules, 6 of the reconciliation), and their totals.
    rows = [line.split() for line in report.splitlines()]
    step_rows = [row for row in rows if len(row) == 3 and row[1] in ("asset", "checks")]
    kinds = [row[1] for row in step_rows]
    assert kinds.count("asset") == 12 and kinds.count("checks") == 19
    assert all(float(row[2]) > 0 for row in step_rows)
    assert "31 steps in " in report

    sql = (
        "SELECT COUNT(*) AS n FROM machine_learning_curated m "
        "JOIN customers_curated c USING (serialNumber)"
    )
    expected = published_table(spark, lake, "machine_learning_curated").count()
    assert expected > 0
    # DuckDB over pyiceberg's scan by default on a local lake (no JVM), Spark on request: the
    # same answer.
    assert main(["query", "--lake", str(lake), sql]) == 0
    assert capsys.readouterr().out.split() == ["n", "-" * len(str(expected)), str(expected)]
    assert main(["query", "--lake", str(lake), "--engine", "spark", sql]) == 0
    assert f"|{expected}" in capsys.readouterr().out.replace(" ", "")
    landing_sql = "SELECT COUNT(*) AS n FROM customer_landing"
    assert main(["query", "--lake", str(lake), landing_sql]) == 0
    landing_lines = sum(
        len(f.read_text().splitlines()) for f in (lake / "customer" / "landing").rglob("*.json")
    )
    assert capsys.readouterr().out.split()[-1] == str(landing_lines)

    # Only reads, on every engine: a write, reflection or a file outside the tables is
    # refused or fails, in one line, and the table is intact.
    for engine in ("duckdb", "spark"):
        for refused in (
            f"INSERT OVERWRITE DIRECTORY '{lake}/customer/curated' SELECT * FROM customers_curated",
            "SELECT reflect('java.lang.System', 'getenv', 'HOME')",
            "SELECT * FROM text.`/etc/hostname`",
            "SELECT * FROM read_text('/etc/hostname')",
            "SELECT * FROM read_csv('/etc/passwd')",
        ):
            assert main(["query", "--lake", str(lake), "--engine", engine, refused]) == 2, refused
            err = capsys.readouterr().err
            assert err.startswith("stedi: ") and "Traceback" not in err, (engine, refused)
            assert len(err.splitlines()) <= 2, (engine, refused)
    assert published_table(spark, lake, "machine_learning_curated").count() == expected
    # A table in the catalog that the lakehouse did not create does not break queries.
    spark.sql(f"CREATE TABLE {lake_catalog(lake).identifier('not_ours')} (a int) USING iceberg")
    for engine in ("duckdb", "spark"):
        count = "SELECT COUNT(*) FROM customer_trusted"
        assert main(["query", "--lake", str(lake), "--engine", engine, count]) == 0
        assert "not_ours" not in capsys.readouterr().out

    # A second run is a second snapshot; rolling back makes the first current again.
    assert main(["history", "--lake", str(lake), "customers_curated"]) == 0
    [first] = _snapshots(capsys.readouterr().out)
    assert main(["run", "--lake", str(lake)]) == 0
    capsys.readouterr()
    assert main(["history", "--lake", str(lake), "customers_curated"]) == 0
    history = _snapshots(capsys.readouterr().out)
    assert [row[0] for row in history] == [first[0], history[1][0]] and first[0] != history[1][0]
    assert history[1][1] == "(current)" and history[0][-1] == history[1][-1]  # same rows
    assert main(["rollback", "--lake", str(lake), "customers_curated", first[0]]) == 0
    capsys.readouterr()
    assert main(["history", "--lake", str(lake), "customers_curated"]) == 0
    assert _snapshots(capsys.readouterr().out)[0][:2] == [first[0], "(current)"]
    assert main(["rollback", "--lake", str(lake), "customers_curated", "12345"]) == 2
    assert "no snapshot 12345" in capsys.readouterr().err


def test_query_reads_the_catalog_named_by_stedi_catalog_path(
    spark, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lake whose embedded catalog lives elsewhere is queried through that catalog, by
    every engine."""
    lake = tmp_path / "lake"
    lake.mkdir()
    catalog_file = tmp_path / "elsewhere" / "catalog.sqlite"
    catalog_file.parent.mkdir()
    catalog = CatalogConfig(str(lake), "stedi", str(catalog_file))
    catalog.register(spark)
    table = catalog.identifier("customer_trusted")
    spark.sql(f"CREATE TABLE {table} (email string) USING iceberg")
    spark.sql(f"INSERT INTO {table} VALUES ('a@test.com'), ('b@test.com')")
    monkeypatch.setenv("STEDI_CATALOG_PATH", str(catalog_file))

    for engine in ("duckdb", "spark"):
        count = "SELECT COUNT(*) AS n FROM customer_trusted"
        assert main(["query", "--lake", str(lake), "--engine", engine, count]) == 0, engine
        cells = [line.strip("| ") for line in capsys.readouterr().out.splitlines()]
        assert cells[cells.index("n") :].count("2") == 1, (engine, cells)


def _snapshots(history: str) -> list[list[str]]:
    """The rows of ``stedi history``'s table, without the date and time columns."""
    lines = history.splitlines()[2:]
    return [line.split()[2:] for line in lines if line.strip()]


def test_run_on_a_lake_without_landing_data_fails_and_names_the_folder(
    spark, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "nowhere").mkdir()
    assert main(["run", "--lake", str(tmp_path / "nowhere")]) == 1
    output = capsys.readouterr()
    assert "no landing data for customer_landing" in output.err
    # The failed landing steps are still reported as asset steps, with their time.
    assert ["customer_landing", "asset"] in [line.split()[:2] for line in output.out.splitlines()]


def test_query_of_an_unknown_table_is_a_clear_error(
    spark, simulated_lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["query", "--lake", str(simulated_lake), "SELECT * FROM nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_dagster_definitions_validate(tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "STEDI_LAKE": str(tmp_path / "lake")}
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_asset_groups_are_landing_trusted_curated() -> None:
    from stedi_assets.definitions import ASSETS

    groups = {key.path[-1]: asset.group_names_by_key[key] for asset in ASSETS for key in asset.keys}
    assert groups == {
        "customer_landing": "landing",
        "accelerometer_landing": "landing",
        "step_trainer_landing": "landing",
        "customer_trusted": "trusted",
        "accelerometer_trusted": "trusted",
        "step_trainer_trusted": "trusted",
        "customers_curated": "curated",
        "machine_learning_curated": "curated",
        "customer_quarantine": "landing",
        "accelerometer_quarantine": "landing",
        "step_trainer_quarantine": "landing",
        "lakehouse_published": "publish",
    }


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT OVERWRITE DIRECTORY '/tmp/x' SELECT 1",
        "insert into customer_trusted select * from customer_trusted",
        "/* a comment */ DELETE FROM customer_trusted",
        "SELECT 1; DROP TABLE customer_trusted",
        "WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a",
        "SET spark.sql.runSQLOnFiles=true",
        "CACHE TABLE customer_trusted",
        "CALL lake.system.rollback_to_snapshot('stedi.customer_trusted', 1)",
        "SELECT reflect('java.lang.System', 'getenv', 'HOME')",
        "select JAVA_METHOD ('java.lang.System', 'getenv')",
        "",
        "-- only a comment",
    ],
)
def test_statements_that_do_not_only_read_are_refused(sql: str) -> None:
    with pytest.raises(NotReadOnly):
        check_read_only(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'insert' AS word, `set` FROM t",
        "-- DELETE nothing\nSELECT COUNT(*) FROM customer_trusted;",
        "WITH a AS (SELECT 1 AS n) SELECT n FROM a",
        "SHOW TABLES",
        "DESCRIBE customer_trusted",
        "EXPLAIN SELECT * FROM customer_trusted",
    ],
)
def test_statements_that_read_are_accepted(sql: str) -> None:
    check_read_only(sql)
