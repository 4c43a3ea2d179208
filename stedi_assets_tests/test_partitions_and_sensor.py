"""Day partitions, the landing sensor, and consent withdrawal, on simulated lakes."""

import json
import os
import re
from pathlib import Path

from dagster import DagsterInstance, RunRequest, SensorResult, SkipReason, build_sensor_context
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from stedi_assets.definitions import LAKEHOUSE_JOB, build_definitions
from stedi_assets.partitions import DAY_PARTITIONS, add_days, days_between, range_tags
from stedi_assets.runner import run_config, run_lakehouse
from stedi_assets.sensors import day_partitions, landing_sensor
from stedi_assets.storage.landing_files import LandingFiles
from stedi_assets_tests.conftest import instance_for, lake_catalog, lake_settings, published_table
from stedi_assets_tests.lake_files import files_holding

DAYS = ("2022-06-18", "2022-06-19", "2022-06-20")  # the simulator's default three days


def _day_files(spark: SparkSession, lake: Path, table: str) -> dict[str, set[str]]:
    """Per day, the data files main's current snapshot holds."""
    catalog = lake_catalog(lake)
    files = spark.sql(
        f"SELECT partition.day AS day, file_path FROM {catalog.identifier(table)}.files"
    )
    per_day: dict[str, set[str]] = {}
    for row in files.collect():
        per_day.setdefault(row.day, set()).add(row.file_path)
    return per_day


def _rows_per_day(spark: SparkSession, lake: Path, table: str) -> dict[str, int]:
    rows = published_table(spark, lake, table).groupBy("day").count().collect()
    return {row["day"]: row["count"] for row in rows}


def test_rerunning_a_day_replaces_exactly_that_day(
    spark: SparkSession, simulated_lake: Path
) -> None:
    settings = lake_settings(simulated_lake)
    assert run_lakehouse(settings, "privacy").success
    accel = "accelerometer_trusted"
    before_rows = _rows_per_day(spark, simulated_lake, accel)
    before_files = _day_files(spark, simulated_lake, accel)
    assert set(before_files) == set(DAYS)

    for _ in range(3):  # k re-runs give the same rows as one
        summary = run_lakehouse(settings, "privacy", days=(DAYS[1], DAYS[1]))
        assert summary.success and all(c.passed for c in summary.checks)

    after_files = _day_files(spark, simulated_lake, accel)
    for untouched in (DAYS[0], DAYS[2]):
        assert after_files[untouched] == before_files[untouched]
    assert after_files[DAYS[1]].isdisjoint(before_files[DAYS[1]])  # rewritten
    assert _rows_per_day(spark, simulated_lake, accel) == before_rows


def test_a_day_run_takes_new_landing_data_of_that_day_only(
    spark: SparkSession, simulated_lake: Path
) -> None:
    settings = lake_settings(simulated_lake)
    assert run_lakehouse(settings, "privacy").success
    before = _rows_per_day(spark, simulated_lake, "accelerometer_trusted")
    # A late upload for the middle day: the same readings a little later, a distinct file.
    trusted = published_table(spark, simulated_lake, "accelerometer_trusted")
    trusted_day = trusted.where(F.col("day") == DAYS[1]).limit(10).collect()
    late = simulated_lake / "accelerometer" / "landing" / DAYS[1] / "late-upload.json"
    late.write_text(
        "".join(
            json.dumps({"user": r.user, "timestamp": r.timestamp + 1, "x": r.x, "y": r.y, "z": r.z})
            + "\n"
            for r in trusted_day
        )
    )
    assert run_lakehouse(settings, "privacy", days=(DAYS[1], DAYS[1])).success
    after = _rows_per_day(spark, simulated_lake, "accelerometer_trusted")
    assert after[DAYS[1]] == before[DAYS[1]] + len(trusted_day)
    assert {d: after[d] for d in (DAYS[0], DAYS[2])} == {d: before[d] for d in (DAYS[0], DAYS[2])}


def test_a_day_run_keeps_customers_whose_readings_are_on_other_days(
    spark: SparkSession, simulated_lake: Path
) -> None:
    """customers_curated is unpartitioned: a run of the whole job for the last day (the
    launchpad's one partition) still builds it from every day's readings, so a customer who
    used the app on the first day only stays in it."""
    settings = lake_settings(simulated_lake)
    assert run_lakehouse(settings, "privacy").success

    def emails() -> set[str]:
        curated = published_table(spark, simulated_lake, "customers_curated")
        return {row.email for row in curated.select("email").collect()}

    readers_by_day = (
        published_table(spark, simulated_lake, "accelerometer_trusted")
        .groupBy("user")
        .agg(F.max("day").alias("last"))
    )
    first_day_only = {r.user for r in readers_by_day.where(F.col("last") == DAYS[0]).collect()}
    before = emails()
    assert first_day_only & before  # the simulated lake has such customers

    job = build_definitions(settings).resolve_job_def(LAKEHOUSE_JOB)
    tags = range_tags(DAYS[2], DAYS[2])
    last_day = job.execute_in_process(
        run_config=run_config("privacy"), tags=tags, instance=instance_for(tags)
    )
    assert last_day.success
    assert emails() == before


def test_each_day_s_materialization_carries_that_day_s_rows_and_preview(
    spark: SparkSession, simulated_lake: Path
) -> None:
    settings = lake_settings(simulated_lake)
    job = build_definitions(settings).resolve_job_def(LAKEHOUSE_JOB)
    tags = range_tags(DAYS[0], DAYS[-1])
    result = job.execute_in_process(
        run_config=run_config("privacy"), tags=tags, instance=instance_for(tags)
    )
    assert result.success

    for table in ("accelerometer_trusted", "step_trainer_trusted", "machine_learning_curated"):
        rows_per_day = _rows_per_day(spark, simulated_lake, table)
        assert len(set(rows_per_day.values())) > 1  # the days differ, or the test proves little
        events = [
            e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == table
        ]
        assert sorted(e.partition for e in events) == list(DAYS)
        for event in events:
            metadata = event.materialization.metadata
            assert metadata["dagster/row_count"].value == rows_per_day[event.partition], table
            assert metadata["table_row_count"].value == sum(rows_per_day.values())
            shown = metadata["preview"].value
            # Masked like every preview (the event log outlives erasure): no e-mail, no serial.
            assert "@" not in shown and not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", shown), table
            preview = shown.splitlines()[2:]
            assert len(preview) == 5
            other_days = [d for d in DAYS if d != event.partition]
            for line in preview:
                cells = [cell.strip() for cell in line.strip("|").split("|")]
                assert event.partition in cells and not set(other_days) & set(cells), line


def _tick(lake: Path, cursor: str | None):
    with build_sensor_context(
        cursor=cursor,
        resources={"landing_files": LandingFiles(root=str(lake))},
        instance=DagsterInstance.ephemeral(),
    ) as context:
        return landing_sensor(context), context


def _days(request: RunRequest) -> tuple[str, str]:
    return (
        request.tags["dagster/asset_partition_range_start"],
        request.tags["dagster/asset_partition_range_end"],
    )


def test_day_partitions_are_landing_s_days_contiguous_and_in_calendar_order(
    simulated_lake: Path,
) -> None:
    instance = DagsterInstance.ephemeral()
    resources = {"landing_files": LandingFiles(root=str(simulated_lake))}
    with build_sensor_context(instance=instance, resources=resources) as context:
        result = day_partitions(context)
        assert isinstance(result, SensorResult)
        [add] = result.dynamic_partitions_requests
        assert list(add.partition_keys) == days_between("2022-06-17", "2022-06-21")
        add_days(instance, "2022-06-17", "2022-06-21")
        assert isinstance(day_partitions(context), SkipReason)  # covered: nothing to do

    add_days(instance, "2022-06-23", "2022-06-23")  # a later day: appended, the gap filled
    assert instance.get_dynamic_partitions(DAY_PARTITIONS) == days_between(
        "2022-06-17", "2022-06-23"
    )
    add_days(instance, "2022-06-15", "2022-06-15")  # an earlier day: all re-added, in order
    assert instance.get_dynamic_partitions(DAY_PARTITIONS) == days_between(
        "2022-06-15", "2022-06-23"
    )


def test_sensor_starts_each_new_file_version_once_one_run_per_stretch_of_days(
    simulated_lake: Path,
) -> None:
    first, _ = _tick(simulated_lake, None)
    # Customer files are new: one run over every day in landing.
    [everything] = first.run_requests
    assert everything.partition_key is None and everything.asset_selection is None
    assert everything.tags["stedi/trigger"] == "initial scan"
    # Readings in a day folder may be of the days either side: the run covers them too.
    assert _days(everything) == ("2022-06-17", "2022-06-21")
    [add] = first.dynamic_partitions_requests  # ...and they are partitions before it starts
    assert list(add.partition_keys) == days_between("2022-06-17", "2022-06-21")

    quiet, _ = _tick(simulated_lake, first.cursor)
    assert isinstance(quiet, SkipReason)

    # Two new files for one old day: one run of that day and its neighbours (a file in folder D
    # may hold readings of D-1 to D+1), whatever the number of files; stable keys.
    for name in ("a.json", "b.json"):
        (simulated_lake / "accelerometer" / "landing" / DAYS[0] / name).write_text("{}\n")
    second, _ = _tick(simulated_lake, first.cursor)
    assert [(_days(r), len(r.asset_selection)) for r in second.run_requests] == [
        (("2022-06-17", "2022-06-19"), 6),  # the five day-partitioned tables and the publish step
    ]
    assert all(r.partition_key is None for r in second.run_requests)
    again, _ = _tick(simulated_lake, first.cursor)  # a repeated tick asks for the same runs
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in second.run_requests]
    assert isinstance(_tick(simulated_lake, second.cursor)[0], SkipReason)

    # A changed file is a new version: its days run again, under a new run key.
    changed = simulated_lake / "accelerometer" / "landing" / DAYS[2] / "c.json"
    changed.write_text("{}\n")
    third, _ = _tick(simulated_lake, second.cursor)
    changed.write_text("{}\n{}\n")
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 5_000_000_000))
    fourth, _ = _tick(simulated_lake, third.cursor)
    [rerun] = fourth.run_requests
    assert _days(rerun) == ("2022-06-19", "2022-06-21")
    assert rerun.run_key not in {r.run_key for r in third.run_requests}

    # Changes in folders two days apart: their neighbourhoods touch, one run covers them.
    for day in (DAYS[0], DAYS[2]):
        (simulated_lake / "step_trainer" / "landing" / day / "s.json").write_text("{}\n")
    [both] = _tick(simulated_lake, fourth.cursor)[0].run_requests
    assert _days(both) == ("2022-06-17", "2022-06-21")
    for day in (DAYS[0], DAYS[2]):
        (simulated_lake / "step_trainer" / "landing" / day / "s.json").unlink()

    # A copy that kept an older modification time (cp -p, rsync -a), in a new day folder, is
    # seen all the same; so is a removed file.
    new_day = simulated_lake / "accelerometer" / "landing" / "2022-06-23"
    new_day.mkdir()
    backdated = new_day / "copied.json"
    backdated.write_text("{}\n")
    os.utime(backdated, ns=(0, 1_000_000_000))  # 1970
    fifth, _ = _tick(simulated_lake, fourth.cursor)
    assert [_days(r) for r in fifth.run_requests] == [("2022-06-22", "2022-06-24")]
    changed.unlink()
    sixth, _ = _tick(simulated_lake, fifth.cursor)
    assert [_days(r) for r in sixth.run_requests] == [("2022-06-19", "2022-06-21")]
    # A cursor of an earlier version (a modification-time watermark): one initial scan.
    old_cursor = json.dumps({"watermark_ms": 1, "at_watermark": []})
    [scan] = _tick(simulated_lake, old_cursor)[0].run_requests
    assert scan.tags["stedi/trigger"] == "initial scan"


def test_consent_withdrawal_removes_the_customer_everywhere_in_one_run(
    spark: SparkSession, simulated_lake: Path
) -> None:
    settings = lake_settings(simulated_lake)
    assert run_lakehouse(settings, "privacy").success
    cursor = _tick(simulated_lake, None)[0].cursor

    # The curated customer with readings on the most days withdraws consent.
    accel = published_table(spark, simulated_lake, "accelerometer_trusted")
    curated = published_table(spark, simulated_lake, "customers_curated")
    busiest = (
        accel.join(curated, accel.user == curated.email)
        .groupBy("email")
        .agg(F.countDistinct("day").alias("days"))
        .orderBy(F.desc("days"), "email")
        .first()
    )
    assert busiest.days >= 2
    record = curated.where(F.col("email") == busiest.email).first().asDict()
    serial = record["serialNumber"]
    withdrawal = {
        **{k: v for k, v in record.items() if not k.startswith("shareWith")},
        "lastUpdateDate": record["lastUpdateDate"] + 1,
    }
    update = simulated_lake / "customer" / "landing" / "withdrawals" / "customer-withdrawal.json"
    update.parent.mkdir()
    update.write_text(json.dumps(withdrawal) + "\n")

    [request] = _tick(simulated_lake, cursor)[0].run_requests
    assert isinstance(request, RunRequest) and request.partition_key is None
    job = build_definitions(settings).resolve_job_def(LAKEHOUSE_JOB)
    result = job.execute_in_process(
        run_config=run_config("privacy"),
        tags=request.tags,
        raise_on_error=False,
        instance=instance_for(request.tags),
    )

    assert result.success
    audit = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert audit["no_rows_of_non_consenting_customers"]
    for name, column, value in (
        ("customer_trusted", "email", busiest.email),
        ("customers_curated", "email", busiest.email),
        ("accelerometer_trusted", "user", busiest.email),
        ("step_trainer_trusted", "serialNumber", serial),
        ("machine_learning_curated", "serialNumber", serial),
    ):
        table = published_table(spark, simulated_lake, name)
        assert table.where(F.col(column) == value).count() == 0, name
    # Erased, not just hidden: no data, manifest, metadata or catalog file outside landing
    # holds the customer any more (older snapshots expired, their files deleted). The
    # quarantine tables are raw landing data and hold none of this customer's lines here.
    assert files_holding(simulated_lake, busiest.email, serial) == []


def test_sensor_on_s3_pages_through_more_than_1000_keys(moto_endpoint: str) -> None:
    """On S3 the listing comes in pages of 1,000 keys; every file of a day is seen, and the
    day's files of one tick still make one run."""
    from stedi_assets.storage.s3 import s3_resource

    s3 = s3_resource()
    client = s3.get_client()
    client.create_bucket(Bucket="sensor-lake")
    day = "2022-06-19"
    client.put_object(Bucket="sensor-lake", Key="lake/customer/landing/c.json", Body=b"{}\n")
    for i in range(1_050):
        client.put_object(
            Bucket="sensor-lake", Key=f"lake/accelerometer/landing/{day}/a-{i:04}.json", Body=b"{}"
        )
    landing = LandingFiles(root="s3://sensor-lake/lake", s3=s3)
    files = landing.files()
    assert len(files) == 1_051 and sum(f.day == day for f in files) == 1_050

    instance = DagsterInstance.ephemeral()
    with build_sensor_context(
        cursor=None, resources={"landing_files": landing}, instance=instance
    ) as context:
        first = landing_sensor(context)
    [everything] = first.run_requests  # the customer file: one run over every day
    assert _days(everything) == ("2022-06-18", "2022-06-20")  # the day and a day either side

    client.put_object(Bucket="sensor-lake", Key=f"lake/step_trainer/landing/{day}/s.json", Body=b"")
    with build_sensor_context(
        cursor=first.cursor, resources={"landing_files": landing}, instance=instance
    ) as ctx:
        second = landing_sensor(ctx)
    assert [(_days(r), r.run_key.startswith("days")) for r in second.run_requests] == [
        (("2022-06-18", "2022-06-20"), True)
    ]
