"""A GraphQL client for a running Dagster webserver: the queries and mutations the UI tests need.

Launching a run goes through ``dagster_graphql``'s ``DagsterGraphQLClient``
(``submit_job_execution``, the launchpad's mutation). Everything it does not cover is a plain
``urllib`` POST to ``/graphql`` (``graphql()``); the queries follow the schema of the installed
``dagster_graphql`` (1.13). ``GraphQLClient`` wraps: asset nodes and groups, runs with status
and tags, waiting for runs, run events (materializations, check evaluations, errors), partition
and check statuses, sensors (start, stop, dry run, cursor, ticks), and the workspace and daemon
statuses that tell when the server is ready.

Failures that should show the server's log (a run or tick that never comes) are raised through
the ``fail`` callable the client is given (by default a plain ``AssertionError``). Usage::

    client = GraphQLClient(port)
    run_id = client.launch_run("stedi_lakehouse", run_config, tags)
    (run,) = client.wait_for_runs([run_id])
"""

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

HOST = "127.0.0.1"  # the server binds only this address

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


class GraphQLClient:
    """The GraphQL API of the Dagster webserver on ``host:port``; see the module docstring."""

    def __init__(
        self,
        port: int,
        host: str = HOST,
        fail: Callable[[str], BaseException] = AssertionError,
    ) -> None:
        self.host = host
        self.port = port
        self.fail = fail
        self.dagster = DagsterGraphQLClient(host, port_number=port, timeout=60)
        self._repository: Repository | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

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

    # ---- workspace and daemon ------------------------------------------------------------

    def location_entries(self) -> list[dict[str, Any]]:
        """The workspace's code locations: ``{name, loadStatus, locationOrLoadError}``."""
        return self.graphql(
            """{ workspaceOrError { __typename ... on Workspace { locationEntries {
              name loadStatus
              locationOrLoadError { __typename ... on PythonError { message } }
            } } } }"""
        )["workspaceOrError"]["locationEntries"]

    def daemon_statuses(self) -> list[dict[str, Any]]:
        """Every daemon's status: ``{daemonType, required, healthy}``."""
        return self.graphql(
            """{ instance { daemonHealth { allDaemonStatuses {
              daemonType required healthy } } } }"""
        )["instance"]["daemonHealth"]["allDaemonStatuses"]

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

    # ---- assets --------------------------------------------------------------------------

    def asset_groups(self) -> dict[str, str]:
        """Every asset with a definition: ``"a/b"`` key path -> group name."""
        return {key: node.group for key, node in self.asset_nodes().items()}

    def asset_nodes(self) -> dict[str, AssetInfo]:
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

    # ---- sensors -------------------------------------------------------------------------

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

    # ---- runs ----------------------------------------------------------------------------

    def launch_run(
        self,
        job: str,
        run_config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Launches (queues) a run of ``job`` as the launchpad does
        (``DagsterGraphQLClient.submit_job_execution``); returns its run id."""
        repository = self.repository()
        try:
            return self.dagster.submit_job_execution(
                job,
                repository_location_name=repository.location,
                repository_name=repository.name,
                run_config=dict(run_config or {}),
                tags=dict(tags or {}),
            )
        except DagsterGraphQLClientError as error:
            # A transport error's message quotes the whole mutation: its cause comes first.
            cause = f"{error.__cause__}; " if error.__cause__ else ""
            raise GraphQLError(f"launching a run of {job}: {cause}{error}"[:4000]) from error

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
        """Waits until every run has finished; raises (through ``fail``) after ``timeout``."""
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

    # ---- backfills (the Lineage page's "Materialize all") ---------------------------------

    def launch_backfill(self, assets: Iterable[str]) -> str:
        """Launches an asset backfill of ``assets`` over all their partitions, as "Materialize
        all" does (``launchPartitionBackfill``); returns the backfill id."""
        data = self.graphql(
            """mutation($params: LaunchBackfillParams!) {
              launchPartitionBackfill(backfillParams: $params) {
                __typename
                ... on LaunchBackfillSuccess { backfillId }
                ... on PythonError { message }
                ... on Error { message }
              }
            }""",
            {
                "params": {
                    "assetSelection": [{"path": key.split("/")} for key in assets],
                    "allPartitions": True,
                }
            },
        )["launchPartitionBackfill"]
        return _expect(data, "LaunchBackfillSuccess")["backfillId"]

    def wait_for_backfill(self, backfill_id: str, timeout: float = 600.0) -> str:
        """Waits until the backfill has ended; returns its status (``COMPLETED_SUCCESS``…)."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.graphql(
                """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
                  __typename
                  ... on PartitionBackfill { status }
                  ... on Error { message }
                } }""",
                {"id": backfill_id},
            )["partitionBackfillOrError"]
            status = _expect(data, "PartitionBackfill")["status"]
            if status not in ("REQUESTED", "CANCELING", "FAILING"):
                return status
            if time.monotonic() > deadline:
                raise self.fail(f"backfill {backfill_id} still {status} after {timeout:.0f} s")
            time.sleep(2.0)

    def partition_metadata(self, asset: str) -> dict[str | None, dict[str, Any]]:
        """The latest materialization's metadata of each partition of ``asset`` (of the asset
        itself, under None, when it is unpartitioned): label -> int, text or markdown."""
        node = self.graphql(
            """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) {
              __typename
              ... on AssetNode { assetMaterializations(limit: 1000) {
                partition timestamp
                metadataEntries {
                  label
                  ... on IntMetadataEntry { intValue }
                  ... on TextMetadataEntry { text }
                  ... on MarkdownMetadataEntry { mdStr }
                }
              } }
              ... on Error { message }
            } }""",
            {"key": {"path": asset.split("/")}},
        )["assetNodeOrError"]
        latest: dict[str | None, dict[str, Any]] = {}
        events = _expect(node, "AssetNode")["assetMaterializations"]
        for event in sorted(events, key=lambda e: float(e["timestamp"])):  # oldest first
            latest[event["partition"]] = {
                entry["label"]: next(
                    (entry[f] for f in ("intValue", "text", "mdStr") if f in entry), None
                )
                for entry in event["metadataEntries"]
            }
        return latest

    def partition_keys(self, asset: str) -> list[str]:
        """The partition keys of ``asset`` as the UI lists them."""
        node = self.graphql(
            """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) {
              __typename ... on AssetNode { partitionKeys } ... on Error { message }
            } }""",
            {"key": {"path": asset.split("/")}},
        )["assetNodeOrError"]
        return _expect(node, "AssetNode")["partitionKeys"]

    # ---- partitions and checks as the UI shows them --------------------------------------

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
