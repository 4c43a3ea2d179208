"""Publishing is all or nothing: a run killed mid-write loses nothing, concurrent runs of
different days both land. These start real `stedi run` processes (their own JVMs)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pyspark.sql import SparkSession

from stedi_assets.runner import run_lakehouse
from stedi_assets_tests.conftest import lake_settings


def _stedi_run(lake: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "STEDI_SPARK_MASTER": "local[2]", "STEDI_SHUFFLE_PARTITIONS": "2"}
    return subprocess.Popen(
        [sys.executable, "-m", "stedi_assets.cli", "run", "--lake", str(lake), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the JVM dies with it
    )


def _count(spark: SparkSession, folder: Path) -> int:
    return spark.read.parquet(str(folder)).count()


def test_a_run_killed_while_writing_leaves_the_previous_version_and_the_next_run_recovers(
    spark: SparkSession, simulated_lake: Path
) -> None:
    settings = lake_settings(simulated_lake)
    assert run_lakehouse(settings, "privacy").success
    table = simulated_lake / "accelerometer" / "trusted"
    before = _count(spark, table)
    before_files = sorted(p.relative_to(table) for p in table.rglob("*.parquet"))

    run = _stedi_run(simulated_lake)
    staging = simulated_lake / "_staging" / "accelerometer" / "trusted"
    deadline = time.monotonic() + 300
    while not any(staging.glob("*/**/*.parquet")):  # Spark is writing the new version
        assert run.poll() is None, "the run ended before it wrote accelerometer_trusted"
        assert time.monotonic() < deadline, "the run never started writing"
        time.sleep(0.01)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=60)

    assert sorted(p.relative_to(table) for p in table.rglob("*.parquet")) == before_files
    assert _count(spark, table) == before
    assert any((simulated_lake / "_staging").rglob("*.parquet"))  # what the kill left behind
    summary = run_lakehouse(settings, "privacy")  # no clean-up in between
    assert summary.success and summary.row_counts["accelerometer_trusted"] == before
    # The next run removed the killed run's half-written version.
    assert not any((simulated_lake / "_staging").rglob("*.parquet"))


def test_two_runs_writing_different_days_at_once_both_land(
    spark: SparkSession, simulated_lake: Path, tmp_path: Path
) -> None:
    assert run_lakehouse(lake_settings(simulated_lake), "privacy").success  # every day once
    days = ("2022-06-18", "2022-06-20")
    runs = [_stedi_run(simulated_lake, "--days", day) for day in days]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs

    table = simulated_lake / "accelerometer" / "trusted"
    assert sorted(p.name for p in table.iterdir()) == [
        f"day={day}" for day in ("2022-06-18", "2022-06-19", "2022-06-20")
    ]
    # The same days computed alone give the same rows.
    alone = tmp_path / "alone"
    alone.mkdir()
    for entity in ("customer", "accelerometer", "step_trainer"):
        (alone / entity).mkdir()
        (alone / entity / "landing").symlink_to(simulated_lake / entity / "landing")
    assert run_lakehouse(lake_settings(alone), "privacy").success
    for day in days:
        for folder in ("accelerometer/trusted", "machine_learning/curated"):
            assert _count(spark, simulated_lake / folder / f"day={day}") == _count(
                spark, alone / folder / f"day={day}"
            )
