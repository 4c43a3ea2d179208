"""The ``stedi`` command, called in-process (sharing the suite's Spark session)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stedi_assets.cli import main
from stedi_assets_tests.conftest import REPO


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
    # How long each step took: 8 asset steps and 13 check steps, and their totals.
    rows = [line.split() for line in report.splitlines()]
    step_rows = [row for row in rows if len(row) == 3 and row[1] in ("asset", "checks")]
    kinds = [row[1] for row in step_rows]
    assert kinds.count("asset") == 8 and kinds.count("checks") == 13
    assert all(float(row[2]) > 0 for row in step_rows)
    assert "21 steps in " in report

    sql = (
        "SELECT COUNT(*) AS n FROM machine_learning_curated m "
        "JOIN customers_curated c USING (serialNumber)"
    )
    assert main(["query", "--lake", str(lake), sql]) == 0
    expected = spark.read.parquet(str(lake / "machine_learning" / "curated")).count()
    assert expected > 0
    assert f"|{expected}" in capsys.readouterr().out.replace(" ", "")


def test_run_on_a_lake_without_landing_data_fails_and_names_the_folder(
    spark, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
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
    from stedi_assets.definitions import defs

    groups = {
        key.path[-1]: node.group_name
        for key, node in ((n.key, n) for n in defs.resolve_asset_graph().asset_nodes)
    }
    assert groups == {
        "customer_landing": "landing",
        "accelerometer_landing": "landing",
        "step_trainer_landing": "landing",
        "customer_trusted": "trusted",
        "accelerometer_trusted": "trusted",
        "step_trainer_trusted": "trusted",
        "customers_curated": "curated",
        "machine_learning_curated": "curated",
    }
