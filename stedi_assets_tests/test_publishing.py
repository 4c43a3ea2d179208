"""Write-audit-publish across processes: a run held at its named point between write and
publish shows readers the previous snapshots; killed there, it changes nothing and the next run
cleans up; two runs of different days both land; a run whose inputs changed meanwhile
publishes nothing. These start real ``stedi run`` processes (their own JVMs)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from stedi_assets.runner import run_lakehouse
from stedi_assets.storage import iceberg
from stedi_assets.storage.pause import BEFORE_PUBLISH
from stedi_assets.storage.scratch import default_scratch_root
from stedi_assets_tests.conftest import lake_catalog, lake_settings, published_table

DAYS = ("2022-06-18", "2022-06-19", "2022-06-20")
TABLES = ("customer_trusted", "accelerometer_trusted", "machine_learning_curated")


def _stedi_run(lake: Path, *args: str, pause: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "STEDI_SPARK_MASTER": "local[2]", "STEDI_SHUFFLE_PARTITIONS": "2"}
    if pause is not None:
        pause.mkdir(exist_ok=True)
        env["STEDI_PAUSE_AT"] = f"{BEFORE_PUBLISH}:{pause}"
    return subprocess.Popen(
        [sys.executable, "-m", "stedi_assets.cli", "run", "--lake", str(lake), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the JVM dies with it
    )


def _wait_until_held(run: subprocess.Popen, pause: Path) -> None:
    deadline = time.monotonic() + 300
    while not (pause / f"{BEFORE_PUBLISH}.reached").exists():
        if run.poll() is not None:
            raise AssertionError(f"the run ended before publishing:\n{run.stdout.read()}")
        assert time.monotonic() < deadline, "the run never reached its publish step"
        time.sleep(0.1)


def _release(pause: Path) -> None:
    (pause / f"{BEFORE_PUBLISH}.go").touch()


def _main_snapshots(spark: SparkSession, lake: Path) -> dict[str, int | None]:
    catalog = lake_catalog(lake)
    catalog.register(spark)
    return {t: iceberg.main_snapshot(spark, catalog, t) for t in TABLES}


def _run_branches(spark: SparkSession, lake: Path) -> list[str]:
    catalog = lake_catalog(lake)
    catalog.register(spark)
    return [
        f"{table}@{branch}"
        for table in iceberg.table_names(spark, catalog)
        for branch in iceberg.run_branches(iceberg.refs(spark, catalog, table))
    ]


def _late_upload(spark: SparkSession, lake: Path, day: str, rows: int = 10) -> int:
    """A late upload for ``day``: some of its readings again a little later, a new file."""
    trusted = published_table(spark, lake, "accelerometer_trusted")
    readings = trusted.where(F.col("day") == day).orderBy("user", "timestamp").limit(rows)
    lines = [
        json.dumps({"user": r.user, "timestamp": r.timestamp + 1, "x": r.x, "y": r.y, "z": r.z})
        for r in readings.collect()
    ]
    (lake / "accelerometer" / "landing" / day / "late-upload.json").write_text(
        "\n".join(lines) + "\n"
    )
    return len(lines)


def _rows_per_day(spark: SparkSession, lake: Path) -> dict[str, int]:
    rows = published_table(spark, lake, "accelerometer_trusted").groupBy("day").count()
    return {row["day"]: row["count"] for row in rows.collect()}


def test_a_run_killed_between_write_and_publish_changes_nothing_and_is_cleaned_up(
    spark: SparkSession, simulated_lake: Path, tmp_path: Path
) -> None:
    settings = lake_settings(simulated_lake)
    assert run_lakehouse(settings, "privacy").success
    before = _main_snapshots(spark, simulated_lake)
    rows_before = _rows_per_day(spark, simulated_lake)
    late = _late_upload(spark, simulated_lake, DAYS[1])

    pause = tmp_path / "pause"
    run = _stedi_run(simulated_lake, pause=pause)
    _wait_until_held(run, pause)
    # Written and audited, not published: readers see the previous snapshot of every table.
    assert _main_snapshots(spark, simulated_lake) == before
    assert _rows_per_day(spark, simulated_lake) == rows_before
    assert len(_run_branches(spark, simulated_lake)) >= len(TABLES)
    # Its parsed landing rows (every customer's) sit in its scratch folder on local disk.
    scratch = default_scratch_root() / str(run.pid)
    assert any(path.is_file() for path in scratch.glob("blockmgr-*/**/*"))
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=60)
    assert scratch.is_dir()  # a killed JVM cleans nothing up

    assert _main_snapshots(spark, simulated_lake) == before
    assert _rows_per_day(spark, simulated_lake) == rows_before
    summary = run_lakehouse(settings, "privacy")  # no clean-up in between
    assert summary.success
    assert _run_branches(spark, simulated_lake) == []  # the killed run's branches are gone
    assert not scratch.exists()  # and so are its landing rows
    after = _rows_per_day(spark, simulated_lake)
    assert after == {**rows_before, DAYS[1]: rows_before[DAYS[1]] + late}


def test_two_runs_writing_different_days_at_once_both_land(
    spark: SparkSession, simulated_lake: Path, tmp_path: Path
) -> None:
    assert run_lakehouse(lake_settings(simulated_lake), "privacy").success  # every day once
    before = _rows_per_day(spark, simulated_lake)
    late = {day: _late_upload(spark, simulated_lake, day) for day in (DAYS[0], DAYS[2])}

    pause = tmp_path / "pause"
    first = _stedi_run(simulated_lake, "--days", DAYS[0], pause=pause)
    _wait_until_held(first, pause)
    second = _stedi_run(simulated_lake, "--days", DAYS[2])  # publishes while the first waits
    assert second.wait(timeout=600) == 0, second.stdout.read()
    _release(pause)  # main moved: the first run re-applies its day on the current main
    assert first.wait(timeout=600) == 0, first.stdout.read()

    after = _rows_per_day(spark, simulated_lake)
    assert after == {day: before[day] + late.get(day, 0) for day in DAYS}
    assert _run_branches(spark, simulated_lake) == []


def test_a_run_whose_input_changed_meanwhile_publishes_nothing(
    spark: SparkSession, simulated_lake: Path, tmp_path: Path
) -> None:
    settings = lake_settings(simulated_lake)
    assert run_lakehouse(settings, "privacy").success
    pause = tmp_path / "pause"
    day_run = _stedi_run(simulated_lake, "--days", DAYS[1], pause=pause)
    _wait_until_held(day_run, pause)

    # Meanwhile a curated customer withdraws, and an all-days run publishes that.
    curated = published_table(spark, simulated_lake, "customers_curated")
    record = curated.orderBy("email").first().asDict()
    withdrawal = {k: v for k, v in record.items() if not k.startswith("shareWith")}
    withdrawal["lastUpdateDate"] += 1
    update = simulated_lake / "customer" / "landing" / "withdrawal.json"
    update.write_text(json.dumps(withdrawal) + "\n")
    assert run_lakehouse(settings, "privacy").success
    published = _main_snapshots(spark, simulated_lake)

    _release(pause)
    assert day_run.wait(timeout=600) == 1
    output = day_run.stdout.read()
    assert "changed on main since this run read it" in output
    # The day run's rows rest on the customer tables before the withdrawal: none published.
    assert _main_snapshots(spark, simulated_lake) == published
    accel = published_table(spark, simulated_lake, "accelerometer_trusted")
    assert accel.where(F.col("user") == record["email"]).count() == 0
