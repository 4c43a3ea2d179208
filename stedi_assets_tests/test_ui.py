"""The Dagster UI end to end: the real webserver and daemon (``dagster dev``) over a simulated
lake, driven through GraphQL as the UI drives it, and the asset graph page rendered in headless
Chromium.

One server serves the whole module (starting it costs 10-20 s on 2 cores), so the tests build on
each other: the launchpad run materializes the simulated days, the sensor test adds one more; the
last test stops the server and proves that every process it started is gone.
"""

import datetime
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from stedi_assets.partitions import range_tags
from stedi_assets.runner import run_config
from stedi_assets.sensors import LAKEHOUSE_JOB
from stedi_assets.simulator import LandingFile, generate_landing, write_landing
from stedi_assets_tests.chromium import find_chromium, render_asset_graph
from stedi_assets_tests.conftest import published_table
from stedi_assets_tests.dagster_graphql_client import RunInfo
from stedi_assets_tests.dagster_server import DagsterServer, start_server

PRIVACY = run_config("privacy")
EXPECTED_GROUPS = {
    "customer_landing": "landing",
    "accelerometer_landing": "landing",
    "step_trainer_landing": "landing",
    "customer_trusted": "trusted",
    "accelerometer_trusted": "trusted",
    "customers_curated": "curated",
    "step_trainer_trusted": "trusted",
    "machine_learning_curated": "curated",
    "customer_quarantine": "landing",
    "accelerometer_quarantine": "landing",
    "step_trainer_quarantine": "landing",
    "lakehouse_published": "publish",
}
# A whole-graph run on the small lake takes ~35 s on 2 idle cores, ~80 s on busy ones.
RUN_TIMEOUT = 240.0
SENSOR = "landing_sensor"
# A sensor's first tick comes within the daemon's 5 s loop, the next after its 30 s interval.
SENSOR_TICK_TIMEOUT = 90.0
TIME_FIELDS = {"accelerometer": "timestamp", "step_trainer": "sensorReadingTime"}
MS_PER_DAY = 24 * 60 * 60 * 1000
# The tags a single-run backfill puts on a run that covers a range of daily partitions.


def next_day_of_readings(files: list[LandingFile]) -> tuple[str, list[LandingFile]]:
    """The last simulated day's reading files again, one day later: day folder, upload time
    in the name and every reading's timestamp shifted by 24 h (same customers and devices)."""
    last = reading_days(files)[-1]
    new_day = (datetime.date.fromisoformat(last) + datetime.timedelta(days=1)).isoformat()
    shifted = []
    for f in files:
        entity, landing, day, name = Path(f.relative_path).parts
        if day != last or entity not in TIME_FIELDS:
            continue
        stem, uploaded = name.removesuffix(".json").rsplit("-", 1)
        lines = []
        for line in f.lines:
            record = json.loads(line)
            record[TIME_FIELDS[entity]] += MS_PER_DAY
            lines.append(json.dumps(record, separators=(",", ":")))
        path = f"{entity}/{landing}/{new_day}/{stem}-{int(uploaded) + MS_PER_DAY}.json"
        shifted.append(LandingFile(entity, path, tuple(lines)))
    return new_day, shifted


def reading_days(files: list[LandingFile]) -> list[str]:
    """The UTC days of the simulated reading files (``<entity>/landing/<day>/<file>``)."""
    return sorted(
        {
            Path(f.relative_path).parts[2]
            for f in files
            if f.relative_path.startswith(("accelerometer/", "step_trainer/"))
        }
    )


@pytest.fixture(scope="module")
def landing_files() -> list[LandingFile]:
    return generate_landing(customers=16, days=2)


@pytest.fixture(scope="module")
def server(
    landing_files: list[LandingFile], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DagsterServer]:
    lake = tmp_path_factory.mktemp("ui") / "lake"
    write_landing(str(lake), landing_files)
    dagster = start_server(lake, tmp_path_factory.mktemp("dagster-home"))
    try:
        yield dagster
    finally:
        # Normally a no-op: test_server_stops_every_process_cleanly stopped it already.
        dagster.stop()


def describe(server: DagsterServer, run: RunInfo) -> str:
    errors = "\n".join(server.run_errors(run.run_id)[:10])
    return f"run {run.run_id} of {run.job_name} ended {run.status}:\n{errors}"


def test_lists_every_asset_with_its_group(server: DagsterServer) -> None:
    assert server.asset_groups() == EXPECTED_GROUPS


def _days_landing_may_hold(landing_files: list[LandingFile]) -> list[str]:
    """The simulated reading days with a day either side (a file may hold its neighbours')."""
    days = reading_days(landing_files)
    return _neighbours(days[0])[:1] + days + _neighbours(days[-1])[-1:]


def _wait_for_day_partitions(server: DagsterServer, days: list[str]) -> None:
    """The day_partitions sensor (on by default) adds landing's days within a tick or two."""
    deadline = time.monotonic() + SENSOR_TICK_TIMEOUT
    while (found := server.partition_keys("accelerometer_trusted")) != days:
        if time.monotonic() > deadline:
            raise server.fail(f"day partitions {found}, expected {days}")
        time.sleep(1.0)


def test_materialize_all_builds_every_table_for_every_day_with_that_day_s_numbers(
    server: DagsterServer, landing_files: list[LandingFile], spark: SparkSession
) -> None:
    """The Lineage page's "Materialize all": an asset backfill of every asset over every
    partition, planned and run by the daemon."""
    days = _days_landing_may_hold(landing_files)
    _wait_for_day_partitions(server, days)

    backfill = server.launch_backfill(EXPECTED_GROUPS)
    status = server.wait_for_backfill(backfill, timeout=3 * RUN_TIMEOUT)
    runs = server.runs(tags={"dagster/backfill": backfill})
    failed_runs = [describe(server, run) for run in runs if run.status != "SUCCESS"]
    assert status == "COMPLETED_SUCCESS" and not failed_runs, (status, failed_runs)
    # As few runs as the policies allow: the unpartitioned tables; every day of the day tables
    # (two runs when the daemon's tick finds landing done before the customer tables: the
    # quarantines need landing only); the publish step. How the waves split depends on which
    # steps each daemon tick finds done: a CI run on a loaded machine saw 6 (all passing).
    # Runs of single days would be many more.
    assert len(runs) <= 6, [(r.run_id, r.tags) for r in runs]

    nodes = server.asset_nodes()
    for asset, node in nodes.items():
        metadata = server.partition_metadata(asset)
        if not node.partitioned:
            assert None in metadata, f"{asset} was not materialized"
            continue
        assert set(server.asset_partitions(asset)["materialized"]) == set(days), asset
        published = published_table(spark, server.lake, asset).groupBy("day").count().collect()
        rows_per_day = {row["day"]: row["count"] for row in published}
        shown = {day: metadata[day]["dagster/row_count"] for day in days}
        assert shown == {day: rows_per_day.get(day, 0) for day in days}, asset

    defined = {(key, check) for key, node in nodes.items() for check in node.checks}
    results = [r for run in runs for r in server.check_results(run.run_id)]
    assert defined <= {(r.asset, r.check) for r in results}
    assert all(r.success for r in results), [r for r in results if not r.success]
    # One result per check and run, no SKIPPED rows of planned days in the check's history.
    for asset, check in defined:
        statuses = [e["status"] for e in server.check_executions(asset, check)]
        assert statuses and set(statuses) == {"SUCCEEDED"}, (asset, check, statuses)


def test_launchpad_run_materializes_every_asset_and_passes_every_check(
    server: DagsterServer, landing_files: list[LandingFile]
) -> None:
    nodes = server.asset_nodes()
    days = reading_days(landing_files)
    partitioned = sorted(key for key, node in nodes.items() if node.partitioned)
    # A job with day-partitioned tables runs over a range of days, as a backfill would.
    tags = range_tags(days[0], days[-1]) if partitioned else {}

    run_id = server.launch_run(LAKEHOUSE_JOB, PRIVACY, tags)
    (run,) = server.wait_for_runs([run_id], timeout=RUN_TIMEOUT)
    if run.status != "SUCCESS":
        raise server.fail(describe(server, run))

    materialized = {asset for asset, _partition in server.materializations(run_id)}
    assert materialized == set(EXPECTED_GROUPS)
    results = server.check_results(run_id)
    failed = [r for r in results if not r.success]
    assert not failed, f"checks failed in run {run_id}: {failed}"
    evaluated = {(r.asset, r.check) for r in results}
    defined = {(key, check) for key, node in nodes.items() for check in node.checks}
    assert defined, "the definitions have no asset checks"
    assert defined <= evaluated, f"checks not evaluated: {sorted(defined - evaluated)}"
    for key in partitioned:
        statuses = server.asset_partitions(key)
        assert set(days) <= set(statuses["materialized"]), (key, statuses)


def test_asset_graph_page_names_every_asset(server: DagsterServer) -> None:
    find_chromium()  # fails, never skips, with the apt-get line when Chromium is missing
    html, found = render_asset_graph(server, EXPECTED_GROUPS)
    missing = sorted(set(EXPECTED_GROUPS) - found)
    assert not missing, f"the rendered asset graph does not name {missing}: {html[-3000:]}"


def _neighbours(day: str) -> list[str]:
    middle = datetime.date.fromisoformat(day)
    return [(middle + datetime.timedelta(days=k)).isoformat() for k in (-1, 0, 1)]


def _run_days(run: RunInfo) -> tuple[str, str]:
    return run.tags["dagster/asset_partition_range_start"], run.tags[
        "dagster/asset_partition_range_end"
    ]


def test_sensor_takes_a_new_day_through(
    server: DagsterServer, landing_files: list[LandingFile]
) -> None:
    """The sensor, on, notices a new day's reading files and runs that day (with its
    neighbours) only. Builds on
    the launchpad run above (the other days and the customer tables are materialized)."""
    assert SENSOR in server.sensors(), f"no sensor {SENSOR}: {server.sensors()}"
    # The launchpad run above already took the files in landing through; tell the sensor so,
    # as the UI's "Test sensor" + "Persist evaluated cursor" does, instead of redoing them.
    evaluation = server.sensor_dry_run(SENSOR)
    assert not evaluation["error"], evaluation["error"]
    assert evaluation["runRequests"], f"the sensor ignores files it never saw: {evaluation}"
    server.set_sensor_cursor(SENSOR, evaluation["cursor"])

    started = time.time()
    assert server.start_sensor(SENSOR) == "RUNNING"
    try:
        new_day, new_files = next_day_of_readings(landing_files)
        write_landing(str(server.lake), new_files)
        # Usually the sensor's first tick (at once) sees them; else the next (30 s later).
        tick = server.wait_for_tick(
            SENSOR, after=started - 1, timeout=SENSOR_TICK_TIMEOUT, with_runs=True
        )
        runs = server.wait_for_runs(tick["runIds"], timeout=RUN_TIMEOUT)
    finally:
        server.stop_sensor(SENSOR)

    for run in runs:
        if run.status != "SUCCESS":
            raise server.fail(describe(server, run))
    # One run, for the new day and its neighbours (its files may hold their readings).
    neighbours = _neighbours(new_day)
    assert [_run_days(run) for run in runs] == [(neighbours[0], neighbours[-1])], [
        (r.run_id, r.tags) for r in runs
    ]
    (run,) = runs
    materialized = server.materializations(run.run_id)
    partitions = {p for _asset, p in materialized if p is not None}
    assert partitions == set(neighbours), f"run {run.run_id} materialized days {partitions}"
    partitioned = {key for key, node in server.asset_nodes().items() if node.partitioned}
    for day in neighbours:
        assert {a for a, p in materialized if p == day} == partitioned, (day, materialized)

    # The new day's partitions are materialized...
    for key in partitioned:
        statuses = server.asset_partitions(key)
        assert new_day in statuses["materialized"], (key, statuses)
    # ...and every check of the run passed, as the run reports it and as the UI shows it.
    # (The checks are unpartitioned, so their evaluation carries no partition; Dagster also
    # records a SKIPPED execution per planned partition of a partitioned asset, which the UI
    # does not show as the check's status.)
    results = server.check_results(run.run_id)
    failed = [r for r in results if not r.success]
    assert results, f"run {run.run_id} evaluated no check"
    assert not failed, f"checks failed in run {run.run_id}: {failed}"
    shown = server.latest_check_executions()
    for asset, check in {(r.asset, r.check) for r in results}:
        execution = shown[(asset, check)]
        assert execution and execution["runId"] == run.run_id, (asset, check, execution)
        assert execution["status"] == "SUCCEEDED", (asset, check, execution)


def test_server_stops_every_process_cleanly(server: DagsterServer) -> None:
    assert server.processes(), "the server was not running"
    graceful = server.stop()
    assert graceful, f"processes had to be killed after SIGINT: {server.killed}"
    assert server.processes() == []
    with socket.socket() as sock:  # the webserver's port is free again
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
        sock.bind(("127.0.0.1", server.port))
