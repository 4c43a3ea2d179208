"""The Dagster UI end to end: the real webserver and daemon (``dagster dev``) over a simulated
lake, driven through GraphQL as the UI drives it, and the asset graph page rendered in headless
Chromium.

One server serves the whole module (starting it costs ~30 s on 2 cores); the last test stops it
and proves that every process it started is gone.
"""

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from stedi_assets.simulator import LandingFile, generate_landing, write_landing
from stedi_assets_tests.dagster_server import (
    DagsterServer,
    RunInfo,
    find_chromium,
    render_asset_graph,
    start_server,
)

JOB = "stedi_lakehouse"
PRIVACY = {"resources": {"rules": {"config": {"profile": "privacy"}}}}
EXPECTED_GROUPS = {
    "customer_landing": "landing",
    "accelerometer_landing": "landing",
    "step_trainer_landing": "landing",
    "customer_trusted": "trusted",
    "accelerometer_trusted": "trusted",
    "customers_curated": "curated",
    "step_trainer_trusted": "trusted",
    "machine_learning_curated": "curated",
}
# A whole-graph run on the small lake takes ~40 s on 2 cores; the margin is for slow CI.
RUN_TIMEOUT = 240.0
# The tags a single-run backfill puts on a run that covers a range of daily partitions.
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


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


def test_lists_the_eight_assets_with_their_groups(server: DagsterServer) -> None:
    assert server.asset_groups() == EXPECTED_GROUPS


def test_launchpad_run_materializes_every_asset_and_passes_every_check(
    server: DagsterServer, landing_files: list[LandingFile]
) -> None:
    nodes = server.asset_nodes()
    days = reading_days(landing_files)
    partitioned = sorted(key for key, node in nodes.items() if node.partitioned)
    # A job with day-partitioned tables runs over a range of days, as a backfill would.
    tags = {RANGE_START: days[0], RANGE_END: days[-1]} if partitioned else {}

    run_id = server.launch_run(JOB, PRIVACY, tags)
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


def test_asset_graph_page_names_the_eight_assets(server: DagsterServer) -> None:
    find_chromium()  # fails, never skips, with the apt-get line when Chromium is missing
    html, found = render_asset_graph(server, EXPECTED_GROUPS)
    missing = sorted(set(EXPECTED_GROUPS) - found)
    assert not missing, f"the rendered asset graph does not name {missing}: {html[-3000:]}"


def test_server_stops_every_process_cleanly(server: DagsterServer) -> None:
    assert server.processes(), "the server was not running"
    graceful = server.stop()
    assert graceful, f"processes had to be killed after SIGINT: {server.killed}"
    assert server.processes() == []
    with socket.socket() as sock:  # the webserver's port is free again
        sock.bind(("127.0.0.1", server.port))
