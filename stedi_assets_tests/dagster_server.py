"""The real Dagster webserver and daemon over a lake, for UI tests and scripts.

``dagster_server(lake)`` starts ``dagster dev -h 127.0.0.1 -p <free port>`` from the repository
root (so ``workspace.yaml`` loads ``stedi_assets.definitions``) with a temporary ``DAGSTER_HOME``
and ``STEDI_LAKE=<lake>``, waits until the code location has loaded, and stops every process
on exit. ``dagster dev`` rather than ``dagster-webserver`` + ``dagster-daemon run``: one command,
and the webserver and the daemon share one code server (one import of the definitions instead
of two, which matters on a 2-core machine).

Stopping: the child runs in its own session (process group), so it can be signalled as a whole
and never receives the test runner's signals. A background ``dagster dev`` inherits an ignored
SIGINT (and maps SIGTERM onto SIGINT), so it would ignore both; it is therefore started through
a tiny wrapper that restores the default SIGINT handler and then ``exec``s ``dagster`` (same
pid). ``stop()`` sends SIGINT to the group (what Ctrl-C in a terminal does), waits up to 30 s,
and only then escalates to SIGTERM and SIGKILL; it reports which processes had to be killed.

The instance (``<home>/dagster.yaml``): storage in the temporary home, telemetry and the
new-user dialog off (no network; nothing over the screenshot), a run queue of one run at a
time (one Spark JVM at a time on 2 cores) that is polled every second instead of every 5 s,
and sensors evaluated in threads.

Every GraphQL call is a plain ``urllib`` POST to ``/graphql``; the queries follow the schema of
the installed ``dagster_graphql`` (1.13). ``DagsterServer`` wraps the ones the tests need: asset
nodes and groups, launching a run (the launchpad's ``launchRun``), runs with status and tags,
waiting for runs, run events (materializations, check evaluations, errors), partition and
check statuses, and sensors (start, stop, dry run, cursor, ticks).

Headless Chromium (Debian's ``chromium``) renders the asset graph page: ``render_asset_graph``
(``--dump-dom``) and ``screenshot_asset_graph`` (``--screenshot``). Usage::

    with dagster_server(lake) as server:
        run_id = server.launch_run("stedi_lakehouse", run_config, tags)
        (run,) = server.wait_for_runs([run_id])
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# Restores the default SIGINT handler, then becomes the command (exec keeps the pid).
_EXEC_WITH_DEFAULT_SIGINT = (
    "import os,signal,sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)

INSTANCE_YAML = """\
# A throwaway instance written by stedi_assets_tests/dagster_server.py.
telemetry:
  enabled: false
nux:
  enabled: false
run_coordinator:
  module: dagster
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 1
    dequeue_interval_seconds: 1
sensors:
  use_threads: true
  num_workers: 4
"""

_ANSI_COLOR = re.compile(r"\x1b\[[0-9;]*m")

FINISHED = frozenset({"SUCCESS", "FAILURE", "CANCELED"})

_RUN_FIELDS = """
  runId status jobName creationTime startTime endTime
  tags { key value }
"""


class GraphQLError(RuntimeError):
    """The server answered with GraphQL errors or an error type where data was expected."""


@dataclass(frozen=True)
class Repository:
    location: str
    name: str

    def selector(self) -> dict[str, str]:
        return {"repositoryLocationName": self.location, "repositoryName": self.name}


@dataclass(frozen=True)
class AssetInfo:
    group: str
    partitioned: bool
    checks: dict[str, bool]  # check name -> blocking


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str
    job_name: str
    tags: dict[str, str]
    creation_time: float

    @property
    def partition(self) -> str | None:
        return self.tags.get("dagster/partition")


@dataclass(frozen=True)
class CheckResult:
    asset: str
    check: str
    partition: str | None
    success: bool
    severity: str


@dataclass
class DagsterServer:
    """A running ``dagster dev``; see the module docstring."""

    lake: Path
    home: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    killed: list[str] = field(default_factory=list)
    stopped_gracefully: bool | None = None
    _repository: Repository | None = None

    # ---- process -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the server's combined stdout and stderr (for failure messages)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no server log)"
        text = _ANSI_COLOR.sub("", text)  # dagster dev logs in color
        return "\n".join(text.splitlines()[-lines:])

    def fail(self, message: str) -> AssertionError:
        return AssertionError(f"{message}\n--- dagster dev log (tail) ---\n{self.log_tail()}")

    def processes(self) -> list[str]:
        """Live processes of the server's process group, as ``pid cmdline``."""
        return _group_members(self.process.pid)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stops the whole process group: SIGINT, then SIGTERM/SIGKILL after ``timeout``.
        True if everything exited on SIGINT; idempotent."""
        if self.stopped_gracefully is not None:
            return self.stopped_gracefully
        pgid = self.process.pid  # leader of its own session, so pgid == pid
        _signal_group(pgid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        # The leader exits once its children have; a run worker could linger after it.
        while time.monotonic() < deadline and (self.process.poll() is None or self.processes()):
            time.sleep(0.2)
        graceful = self.process.poll() is not None and not self.processes()
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            left = self.processes()
            if not left and self.process.poll() is not None:
                break
            self.killed.extend(f"{sig.name}: {p}" for p in left)
            _signal_group(pgid, sig)
            end = time.monotonic() + grace
            while time.monotonic() < end and self.processes():
                time.sleep(0.2)
        self.process.wait(timeout=5)
        self.stopped_gracefully = graceful
        return graceful

    # ---- GraphQL -------------------------------------------------------------------------

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POSTs one GraphQL request and returns its ``data``; raises on ``errors``."""
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:2000]
            raise GraphQLError(f"HTTP {error.code} from /graphql: {detail}") from error
        if payload.get("errors"):
            raise GraphQLError(json.dumps(payload["errors"], indent=1)[:4000])
        return payload["data"]

    def repository(self) -> Repository:
        """The (only) repository of the workspace: code location and repository name."""
        if self._repository is None:
            data = self.graphql(
                """{ repositoriesOrError {
                  __typename
                  ... on RepositoryConnection { nodes { name location { name } } }
                  ... on PythonError { message }
                } }"""
            )["repositoriesOrError"]
            nodes = _expect(data, "RepositoryConnection")["nodes"]
            if len(nodes) != 1:
                raise GraphQLError(f"expected one repository, got {nodes}")
            self._repository = Repository(nodes[0]["location"]["name"], nodes[0]["name"])
        return self._repository

    def asset_groups(self) -> dict[str, str]:
        """Every asset with a definition: ``"a/b"`` key path -> group name."""
        return {key: node.group for key, node in self.asset_nodes().items()}

    def asset_nodes(self) -> dict[str, "AssetInfo"]:
        """Every asset with a definition, by ``"a/b"`` key path: group, partitioned, checks."""
        nodes = self.graphql(
            """{ assetNodes {
              assetKey { path } groupName isPartitioned
              assetChecksOrError { __typename ... on AssetChecks { checks { name blocking } } }
            } }"""
        )["assetNodes"]
        return {
            "/".join(n["assetKey"]["path"]): AssetInfo(
                group=n["groupName"],
                partitioned=n["isPartitioned"],
                checks={
                    c["name"]: c["blocking"] for c in n["assetChecksOrError"].get("checks", [])
                },
            )
            for n in nodes
        }

    def sensors(self) -> dict[str, str]:
        """Sensor name -> status (RUNNING or STOPPED)."""
        data = self.graphql(
            """query($repo: RepositorySelector!) { sensorsOrError(repositorySelector: $repo) {
              __typename
              ... on Sensors { results { name sensorState { status } } }
              ... on PythonError { message }
            } }""",
            {"repo": self.repository().selector()},
        )["sensorsOrError"]
        results = _expect(data, "Sensors")["results"]
        return {s["name"]: s["sensorState"]["status"] for s in results}

    def start_sensor(self, name: str) -> str:
        """Turns a sensor on (``startSensor``); returns its new status."""
        data = self.graphql(
            """mutation($sel: SensorSelector!) { startSensor(sensorSelector: $sel) {
              __typename
              ... on Sensor { sensorState { status } }
              ... on SensorNotFoundError { message }
              ... on UnauthorizedError { message }
              ... on PythonError { message }
            } }""",
            {"sel": {**self.repository().selector(), "sensorName": name}},
        )["startSensor"]
        return _expect(data, "Sensor")["sensorState"]["status"]

    def stop_sensor(self, name: str) -> str:
        """Turns a sensor off (``stopSensor`` takes the sensor's id); returns its new status."""
        sensor = self.graphql(
            """query($sel: SensorSelector!) { sensorOrError(sensorSelector: $sel) {
              __typename ... on Sensor { id } ... on SensorNotFoundError { message }
              ... on PythonError { message }
            } }""",
            {"sel": {**self.repository().selector(), "sensorName": name}},
        )["sensorOrError"]
        data = self.graphql(
            """mutation($id: String!) { stopSensor(id: $id) {
              __typename
              ... on StopSensorMutationResult { instigationState { status } }
              ... on UnauthorizedError { message }
              ... on PythonError { message }
            } }""",
            {"id": _expect(sensor, "Sensor")["id"]},
        )["stopSensor"]
        return _expect(data, "StopSensorMutationResult")["instigationState"]["status"]

    def _sensor_selector(self, name: str) -> dict[str, str]:
        return {**self.repository().selector(), "sensorName": name}

    def sensor_dry_run(self, name: str, cursor: str | None = None) -> dict[str, Any]:
        """Evaluates a sensor once without launching anything (the UI's "Test sensor"):
        ``{runRequests: [{runKey, tags}], skipReason, cursor, error}``."""
        data = self.graphql(
            """mutation($sel: SensorSelector!, $cursor: String) {
              sensorDryRun(selectorData: $sel, cursor: $cursor) {
                __typename
                ... on DryRunInstigationTick { evaluationResult {
                  runRequests { runKey tags { key value } }
                  skipReason cursor error { message }
                } }
                ... on Error { message }
              }
            }""",
            {"sel": self._sensor_selector(name), "cursor": cursor},
        )["sensorDryRun"]
        return _expect(data, "DryRunInstigationTick")["evaluationResult"]

    def set_sensor_cursor(self, name: str, cursor: str | None) -> None:
        """Sets a sensor's cursor (the UI's "Set cursor" / "Persist evaluated cursor")."""
        data = self.graphql(
            """mutation($sel: SensorSelector!, $cursor: String) {
              setSensorCursor(sensorSelector: $sel, cursor: $cursor) {
                __typename ... on Error { message }
              }
            }""",
            {"sel": self._sensor_selector(name), "cursor": cursor},
        )["setSensorCursor"]
        _expect(data, "Sensor")

    def sensor_ticks(self, name: str, limit: int = 10) -> list[dict[str, Any]]:
        """A sensor's latest ticks, newest first:
        ``{tickId, status, timestamp, runIds, skipReason, error}``."""
        data = self.graphql(
            """query($sel: SensorSelector!, $limit: Int) { sensorOrError(sensorSelector: $sel) {
              __typename
              ... on Sensor { sensorState { ticks(limit: $limit) {
                tickId status timestamp runIds skipReason error { message }
              } } }
              ... on Error { message }
            } }""",
            {"sel": self._sensor_selector(name), "limit": limit},
        )["sensorOrError"]
        return _expect(data, "Sensor")["sensorState"]["ticks"]

    def wait_for_tick(
        self, name: str, after: float, timeout: float = 90.0, with_runs: bool = False
    ) -> dict[str, Any]:
        """The first finished tick of a sensor that started after ``after`` (epoch seconds),
        optionally the first one that requested runs; raises if a tick fails or on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ticks = [t for t in self.sensor_ticks(name) if t["timestamp"] > after]
            for tick in reversed(ticks):  # oldest first
                if tick["status"] == "FAILURE":
                    raise self.fail(f"sensor {name} tick failed: {tick['error']}")
                if tick["status"] in ("SUCCESS", "SKIPPED") and (tick["runIds"] or not with_runs):
                    return tick
            time.sleep(1.0)
        what = "requesting runs" if with_runs else "finished"
        raise self.fail(f"no {what} tick of sensor {name} within {timeout:.0f} s")

    def launch_run(
        self,
        job: str,
        run_config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Launches (queues) a run of ``job`` as the launchpad does; returns its run id."""
        params = {
            "selector": {**self.repository().selector(), "jobName": job},
            "runConfigData": dict(run_config or {}),
            "executionMetadata": {
                "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]
            },
        }
        data = self.graphql(
            """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
              __typename
              ... on LaunchRunSuccess { run { runId } }
              ... on RunConfigValidationInvalid { errors { message } }
              ... on Error { message }
            } }""",
            {"params": params},
        )["launchRun"]
        return _expect(data, "LaunchRunSuccess")["run"]["runId"]

    def runs(self, job: str | None = None, tags: Mapping[str, str] | None = None) -> list[RunInfo]:
        """Runs, newest first, optionally of one job and carrying all of ``tags``."""
        run_filter: dict[str, Any] = {}
        if job:
            run_filter["pipelineName"] = job
        if tags:
            run_filter["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        data = self.graphql(
            f"""query($filter: RunsFilter) {{ runsOrError(filter: $filter) {{
              __typename
              ... on Runs {{ results {{ {_RUN_FIELDS} }} }}
              ... on Error {{ message }}
            }} }}""",
            {"filter": run_filter},
        )["runsOrError"]
        return [_run_info(r) for r in _expect(data, "Runs")["results"]]

    def wait_for_runs(self, run_ids: Iterable[str], timeout: float = 180.0) -> list[RunInfo]:
        """Waits until every run has finished; raises (with the log tail) after ``timeout``."""
        wanted = set(run_ids)
        deadline = time.monotonic() + timeout
        while True:
            runs = [r for r in self.runs() if r.run_id in wanted]
            if len(runs) == len(wanted) and all(r.status in FINISHED for r in runs):
                return runs
            if time.monotonic() > deadline:
                states = {r.run_id: r.status for r in runs}
                raise self.fail(f"runs not finished after {timeout:.0f} s: {states}")
            time.sleep(1.0)

    def run_errors(self, run_id: str) -> list[str]:
        """The error messages of a run's events (failed steps, failed run), for messages."""
        messages: list[str] = []
        for event in self.run_events(run_id):
            error = event.get("error")
            if error or event.get("level") == "ERROR":
                error = error or {}
                cause = (error.get("cause") or {}).get("message", "")
                messages.append(
                    " ".join(filter(None, (event.get("message"), error.get("message"), cause)))
                )
        return messages

    def run_events(self, run_id: str) -> list[dict[str, Any]]:
        """Every event of a run (``logsForRun``, paged), with check evaluations expanded."""
        events: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            data = self.graphql(
                """query($runId: ID!, $cursor: String) {
                  logsForRun(runId: $runId, afterCursor: $cursor, limit: 1000) {
                    __typename
                    ... on EventConnection {
                      cursor hasMore
                      events {
                        __typename
                        ... on MessageEvent { message level eventType }
                        ... on ErrorEvent { error { message cause { message } } }
                        ... on MaterializationEvent { assetKey { path } partition }
                        ... on AssetCheckEvaluationEvent {
                          evaluation {
                            assetKey { path } checkName partition success severity
                          }
                        }
                      }
                    }
                    ... on Error { message }
                  }
                }""",
                {"runId": run_id, "cursor": cursor},
            )["logsForRun"]
            page = _expect(data, "EventConnection")
            events.extend(page["events"])
            cursor = page["cursor"]
            if not page["hasMore"]:
                return events

    def materializations(self, run_id: str) -> list[tuple[str, str | None]]:
        """The (asset, partition) pairs a run materialized."""
        return [
            ("/".join(e["assetKey"]["path"]), e["partition"])
            for e in self.run_events(run_id)
            if e["__typename"] == "MaterializationEvent"
        ]

    def check_results(self, run_id: str) -> list[CheckResult]:
        """The asset check evaluations a run reported."""
        return [
            CheckResult(
                asset="/".join(e["evaluation"]["assetKey"]["path"]),
                check=e["evaluation"]["checkName"],
                partition=e["evaluation"]["partition"],
                success=e["evaluation"]["success"],
                severity=e["evaluation"]["severity"],
            )
            for e in self.run_events(run_id)
            if e["__typename"] == "AssetCheckEvaluationEvent"
        ]

    def asset_partitions(self, asset: str) -> dict[str, list[str]]:
        """Partition keys of a partitioned asset by status: materialized, failed,
        materializing (time partitions come back as ranges and are expanded here)."""
        node = self.graphql(
            """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) {
              __typename
              ... on AssetNode {
                partitionKeys
                assetPartitionStatuses {
                  __typename
                  ... on TimePartitionStatuses { ranges { startKey endKey status } }
                  ... on DefaultPartitionStatuses {
                    materializedPartitions failedPartitions materializingPartitions
                  }
                }
              }
              ... on Error { message }
            } }""",
            {"key": {"path": asset.split("/")}},
        )["assetNodeOrError"]
        node = _expect(node, "AssetNode")
        statuses = node["assetPartitionStatuses"]
        if statuses["__typename"] == "DefaultPartitionStatuses":
            return {
                "materialized": statuses["materializedPartitions"],
                "failed": statuses["failedPartitions"],
                "materializing": statuses["materializingPartitions"],
            }
        keys: list[str] = node["partitionKeys"]
        result: dict[str, list[str]] = {"materialized": [], "failed": [], "materializing": []}
        for span in statuses.get("ranges", []):
            first, last = keys.index(span["startKey"]), keys.index(span["endKey"])
            result[span["status"].lower()].extend(keys[first : last + 1])
        return result

    def latest_check_executions(self) -> dict[tuple[str, str], dict[str, Any]]:
        """What the UI shows per check, for its asset's latest materialization:
        ``(asset, check) -> {status, runId, partition}`` (None: never executed)."""
        nodes = self.graphql(
            """{ assetNodes { assetKey { path } assetChecksOrError {
              __typename ... on AssetChecks { checks {
                name executionForLatestMaterialization { status runId partition }
              } }
            } } }"""
        )["assetNodes"]
        return {
            ("/".join(n["assetKey"]["path"]), c["name"]): c["executionForLatestMaterialization"]
            for n in nodes
            for c in n["assetChecksOrError"].get("checks", [])
        }

    def check_executions(
        self, asset: str, check: str, partition: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """Recent executions of one check (``assetCheckExecutions``), newest first:
        ``{runId, status, partition, success}``."""
        rows = self.graphql(
            """query($key: AssetKeyInput!, $check: String!, $partition: String, $limit: Int!) {
              assetCheckExecutions(
                assetKey: $key, checkName: $check, partition: $partition, limit: $limit
              ) { runId status partition evaluation { success } }
            }""",
            {
                "key": {"path": asset.split("/")},
                "check": check,
                "partition": partition,
                "limit": limit,
            },
        )["assetCheckExecutions"]
        return [
            {
                "runId": r["runId"],
                "status": r["status"],
                "partition": r["partition"],
                "success": (r["evaluation"] or {}).get("success"),
            }
            for r in rows
        ]


def _expect(data: dict[str, Any], typename: str) -> dict[str, Any]:
    """``data`` if it has the wanted ``__typename``, else a GraphQLError naming the error."""
    if data.get("__typename") != typename:
        raise GraphQLError(f"expected {typename}, got {json.dumps(data)[:4000]}")
    return data


def _run_info(raw: dict[str, Any]) -> RunInfo:
    return RunInfo(
        run_id=raw["runId"],
        status=raw["status"],
        job_name=raw["jobName"],
        tags={t["key"]: t["value"] for t in raw["tags"]},
        creation_time=raw["creationTime"],
    )


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _group_members(pgid: int) -> list[str]:
    """Live (non-zombie) processes whose process group is ``pgid``, as ``pid cmdline``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:  # exited while we looked
            continue
        # Fields after "(comm)": state, ppid, pgrp, ...; comm itself may contain spaces.
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            members.append(f"{entry.name} {cmdline[:200]}")
    return members


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):  # nothing left in the group
        os.killpg(pgid, sig)


def _dagster_executable() -> str:
    """The ``dagster`` script next to this interpreter (the project's venv)."""
    candidate = Path(sys.executable).parent / "dagster"
    return str(candidate) if candidate.exists() else "dagster"


def start_server(
    lake: Path,
    home: Path,
    *,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 180.0,
) -> DagsterServer:
    """Starts ``dagster dev`` over ``lake`` with ``home`` as DAGSTER_HOME and waits until the
    code location is loaded and the daemon is heartbeating. Stop it with ``stop()``."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML, encoding="utf-8")
    port = free_port()
    child_env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "STEDI_LAKE": str(lake),
        "SPARK_LOCAL_IP": "127.0.0.1",
        # Small Spark settings for a 2-core machine unless the caller says otherwise.
        "STEDI_SPARK_MASTER": os.environ.get("STEDI_SPARK_MASTER", "local[2]"),
        "STEDI_SHUFFLE_PARTITIONS": os.environ.get("STEDI_SHUFFLE_PARTITIONS", "2"),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    log_path = home / "dagster-dev.log"
    command = [
        sys.executable,
        "-c",
        _EXEC_WITH_DEFAULT_SIGINT,
        _dagster_executable(),
        "dev",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        str(REPO / "workspace.yaml"),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: signalled as a whole, never by pytest
        )
    server = DagsterServer(lake=lake, home=home, port=port, process=process, log_path=log_path)
    try:
        _wait_until_ready(server, startup_timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_ready(server: DagsterServer, timeout: float) -> None:
    """Polls /server_info, then the workspace (code location loaded) and the daemon's
    heartbeat (queued runs and sensors need it)."""
    deadline = time.monotonic() + timeout
    stage = "webserver"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise server.fail(f"dagster dev exited with {server.process.returncode}")
        try:
            if stage == "webserver":
                with urllib.request.urlopen(f"{server.url}/server_info", timeout=5) as response:
                    if response.status == 200:
                        stage = "code location"
            if stage == "code location":
                entries = server.graphql(
                    """{ workspaceOrError { __typename ... on Workspace { locationEntries {
                      name loadStatus
                      locationOrLoadError { __typename ... on PythonError { message } }
                    } } } }"""
                )["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    errors = [
                        e
                        for e in entries
                        if e["locationOrLoadError"]["__typename"] == "PythonError"
                    ]
                    if errors:
                        raise server.fail(f"code location failed to load: {errors}")
                    stage = "daemon"
            if stage == "daemon":
                statuses = server.graphql(
                    """{ instance { daemonHealth { allDaemonStatuses {
                      daemonType required healthy } } } }"""
                )["instance"]["daemonHealth"]["allDaemonStatuses"]
                wanted = {"QUEUED_RUN_COORDINATOR", "SENSOR"}
                if all(s["healthy"] for s in statuses if s["daemonType"] in wanted):
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, GraphQLError):
            pass  # not up yet
        time.sleep(0.5)
    raise server.fail(f"dagster dev not ready after {timeout:.0f} s (waiting for the {stage})")


@contextmanager
def dagster_server(
    lake: Path,
    *,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 180.0,
) -> Iterator[DagsterServer]:
    """``dagster dev`` over ``lake`` for the duration of the block (see ``start_server``); a
    temporary DAGSTER_HOME unless ``home`` is given. Always stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="dagster-home-") as temp_home:
        server = start_server(
            lake, home or Path(temp_home), env=env, startup_timeout=startup_timeout
        )
        try:
            yield server
        finally:
            server.stop()


# ---- headless Chromium ---------------------------------------------------------------------

CHROMIUM_INSTALL = "apt-get install chromium"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ASSET_GROUPS = ("landing", "trusted", "curated", "publish")
# Wide enough that the lineage graph, zoomed to fit the width, draws full asset nodes with
# their names (narrower, it draws minimal nodes with elided names like "accelerom…_landing").
GRAPH_WINDOW = (2400, 3200)


def find_chromium() -> str:
    """The headless-capable Chromium binary; raises (never skips) with the install line."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise FileNotFoundError(f"Chromium not found (looked for {CHROMIUM_NAMES}): {CHROMIUM_INSTALL}")


def asset_graph_url(server: DagsterServer, groups: Iterable[str] = ASSET_GROUPS) -> str:
    """The global asset lineage page (``/asset-groups`` in Dagster 1.13) with every group
    expanded. The UI collapses groups by default when there are several; ``expanded`` lists
    group ids, ``global@global:<group>`` (or ``<repo>@<location>:<group>`` when the UI groups
    per code location), so both forms are given."""
    repo = server.repository()
    ids = [f"global@global:{g}" for g in groups]
    ids += [f"{repo.name}@{repo.location}:{g}" for g in groups]
    return f"{server.url}/asset-groups?{urllib.parse.urlencode({'expanded': ','.join(ids)})}"


def run_chromium(
    url: str,
    *args: str,
    window: tuple[int, int] = GRAPH_WINDOW,
    virtual_time_ms: int = 20_000,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[bytes]:
    """One headless Chromium invocation on ``url`` with a fresh profile and no network
    chatter (``args``: ``--dump-dom`` or ``--screenshot=PATH``). The virtual time budget lets
    the single-page app fetch its GraphQL data and lay the graph out before the dump."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [
            find_chromium(),
            "--headless",
            "--no-sandbox",  # runs as root in containers
            "--disable-gpu",
            "--disable-dev-shm-usage",  # small /dev/shm in containers
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--mute-audio",
            f"--user-data-dir={profile}",
            f"--window-size={window[0]},{window[1]}",
            f"--virtual-time-budget={virtual_time_ms}",
            *args,
            url,
        ]
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # so a hung browser can be killed with all its helpers
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.communicate()
            raise AssertionError(f"chromium did not finish within {timeout:.0f} s: {url}") from None
        finally:
            _signal_group(process.pid, signal.SIGKILL)  # helpers that outlive the browser
    if process.returncode != 0:
        tail = stderr.decode(errors="replace")[-2000:]
        raise AssertionError(f"chromium exited with {process.returncode}: {tail}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def rendered_asset_names(html: str, names: Iterable[str]) -> set[str]:
    """The ``names`` that occur as a whole text node (``>name<``) in rendered HTML."""
    return {name for name in names if f">{name}<" in html}


def render_asset_graph(
    server: DagsterServer, names: Iterable[str], attempts: int = 3
) -> tuple[str, set[str]]:
    """The asset graph page's DOM after rendering, retried with more virtual time until it
    names every one of ``names``; returns the DOM and the names found."""
    wanted = set(names)
    html, found = "", set[str]()
    for attempt in range(attempts):
        budget = 20_000 * (attempt + 1)
        dump = run_chromium(asset_graph_url(server), "--dump-dom", virtual_time_ms=budget)
        html = dump.stdout.decode(errors="replace")
        found = rendered_asset_names(html, wanted)
        if found == wanted:
            break
    return html, found


def screenshot_asset_graph(server: DagsterServer, path: Path, attempts: int = 3) -> Path:
    """A PNG of the asset graph page, taken once the rendered DOM names every asset."""
    names = set(server.asset_groups())
    _html, found = render_asset_graph(server, names, attempts)
    if found != names:
        raise AssertionError(f"the asset graph page never named {sorted(names - found)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    run_chromium(asset_graph_url(server), f"--screenshot={path}", virtual_time_ms=30_000)
    if not path.is_file() or path.stat().st_size == 0:
        raise AssertionError(f"chromium wrote no screenshot to {path}")
    return path
