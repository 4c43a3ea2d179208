"""Runs the whole lakehouse in this process and summarizes the outcome (used by ``stedi run``
and the tests)."""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckSeverity,
    DagsterEventType,
    DagsterInstance,
    ExecuteInProcessResult,
    build_resources,
)

from stedi_assets.definitions import ASSETS, LAKEHOUSE_JOB, build_definitions
from stedi_assets.partitions import FIRST_DAY, add_days, landing_day_range, range_tags
from stedi_assets.rules import Profile
from stedi_assets.sensors import DAY_ASSETS, days_landing_may_hold
from stedi_assets.settings import Settings, landing_files
from stedi_assets.settings import build_resources as lakehouse_resources
from stedi_assets.storage.io_manager import TABLE_ROW_COUNT
from stedi_assets.storage.landing_files import LandingFile
from stedi_assets.storage.layout import LANDING_TABLES, quarantine_of


@dataclass(frozen=True)
class CheckOutcome:
    asset: str
    name: str
    passed: bool
    blocking_failure: bool  # failed with ERROR severity on a blocking check: downstream stopped
    violations: int | None
    description: str | None = None  # what is wrong, for a failed check
    # The result's metadata as plain values (the reconciliation's terms, for example).
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepTime:
    step: str
    is_check: bool  # a step of checks, not of an asset
    seconds: float


@dataclass(frozen=True)
class RunSummary:
    success: bool
    run_id: str
    row_counts: dict[str, int]
    quarantined: dict[str, int]  # landing table -> rows rejected into its quarantine table
    checks: list[CheckOutcome]
    failures: list[str]  # "<step>: <error message>" of every failed step
    steps: list[StepTime]  # every step that ran, in the order it started
    first_step_at: float | None = None  # when the first step started (seconds since the epoch)

    @property
    def blocking_failures(self) -> list[CheckOutcome]:
        return [c for c in self.checks if c.blocking_failure]


def _table_rows(metadata: Mapping[str, Any]) -> int:
    """The table's rows (a day's materialization counts the day in ``dagster/row_count``)."""
    return int(metadata.get(TABLE_ROW_COUNT, metadata["dagster/row_count"]).value)


def run_config(profile: Profile | str, log_level: str = "DEBUG") -> dict[str, Any]:
    return {
        "resources": {"rules": {"config": {"profile": Profile(profile).name}}},
        "loggers": {"console": {"config": {"log_level": log_level}}},
    }


@contextmanager
def _instance(given: DagsterInstance | None) -> Iterator[DagsterInstance]:
    """The caller's instance, else ``$DAGSTER_HOME``'s (so runs show in the UI), else a
    throwaway one."""
    if given is not None:
        yield given
        return
    owned = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    with owned:
        yield owned


def run_lakehouse(
    settings: Settings,
    profile: Profile | str = Profile.privacy,
    instance: DagsterInstance | None = None,
    log_level: str = "DEBUG",
    days: tuple[str, str] | None = None,
) -> RunSummary:
    """Materializes every asset and runs every check in one process (one Spark session) over
    every day in landing; or, with ``days=(first, last)``, those days of the day-partitioned
    tables only, with the customer tables as they are (they change only in all-days runs)."""
    if not settings.is_s3 and not Path(settings.lake_root).is_dir():
        # Said before Spark starts, and nothing is created.
        raise FileNotFoundError(f"the lake {settings.lake_root} does not exist")
    files = landing_files(settings).files()
    folder_days = days_landing_may_hold(f.day for f in files if f.day)
    first, last = days or _days_of_readings(settings, files, folder_days) or (FIRST_DAY, FIRST_DAY)
    selection = DAY_ASSETS if days else None
    job = build_definitions(settings).resolve_job_def(LAKEHOUSE_JOB)
    with _instance(instance) as dagster_instance:
        # The run's days, and every day landing may hold (as the day_partitions sensor has
        # them), are partitions before the run starts.
        may_hold = folder_days or (first, last)
        add_days(dagster_instance, min(first, may_hold[0]), max(last, may_hold[1]))
        result = job.execute_in_process(
            run_config=run_config(profile, log_level),
            instance=dagster_instance,
            raise_on_error=False,
            tags=range_tags(first, last),
            asset_selection=selection,
        )
        steps, first_step_at = _step_times(dagster_instance, result)
    row_counts = {
        event.asset_key.path[-1]: _table_rows(event.materialization.metadata)
        for event in result.get_asset_materialization_events()
        if "dagster/row_count" in event.materialization.metadata
    }
    # A quarantine table's rows are its landing table's rejected lines.
    quarantined = {
        spec.name: row_counts.pop(quarantine_of(spec.name).name)
        for spec in LANDING_TABLES
        if quarantine_of(spec.name).name in row_counts
    }
    checks = [
        CheckOutcome(
            asset=evaluation.asset_key.path[-1],
            name=evaluation.check_name,
            passed=evaluation.passed,
            blocking_failure=not evaluation.passed
            and evaluation.blocking
            and evaluation.severity == AssetCheckSeverity.ERROR,
            violations=_violations(evaluation.metadata),
            description=evaluation.description,
            facts={name: entry.value for name, entry in evaluation.metadata.items()},
        )
        for evaluation in result.get_asset_check_evaluations()
    ]
    failures = [
        f"{event.step_key}: {_root_cause(event.step_failure_data.error)}"
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    ]
    return RunSummary(
        result.success,
        result.run_id,
        row_counts,
        quarantined,
        checks,
        failures,
        steps,
        first_step_at,
    )


def _step_times(
    instance: DagsterInstance, result: ExecuteInProcessResult
) -> tuple[list[StepTime], float | None]:
    """How long each step took, from the run's event log (millisecond timestamps), and when
    the first step started."""
    # An asset's step is its op; every other step evaluates checks (whether it failed or not).
    asset_steps = {asset.node_def.name for asset in ASSETS}
    started: dict[str, float] = {}
    steps = []
    for record in instance.all_logs(result.run_id, of_type=set(STEP_EVENTS)):
        step = record.step_key
        if record.dagster_event_type == DagsterEventType.STEP_START:
            started[step] = record.timestamp
        elif step in started:
            steps.append(StepTime(step, step not in asset_steps, record.timestamp - started[step]))
    return sorted(steps, key=lambda time: started[time.step]), min(started.values(), default=None)


STEP_EVENTS = (
    DagsterEventType.STEP_START,
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.STEP_FAILURE,
)


def _days_of_readings(
    settings: Settings, files: list[LandingFile], folder_days: tuple[str, str] | None
) -> tuple[str, str] | None:
    """The days an all-days run covers: those the day folders' readings may hold (a day either
    side, as the sensor's all-days runs), known without reading a file. Only when a reading
    file sits in no day folder are the readings themselves scanned for their days."""
    readings = [f for f in files if f.entity != "customer"]
    if folder_days is not None and all(f.day for f in readings):
        return folder_days
    return days_in_landing(settings)


def days_in_landing(settings: Settings) -> tuple[str, str] | None:
    """The first and last day of any reading in the landing zone (None: no readings, or no
    landing folder yet, which the run itself then reports)."""
    lake = lakehouse_resources(settings, writes=False)["lake"]
    with build_resources({"lake": lake}) as resources:
        try:
            readings = [
                (resources.lake.read_landing("accelerometer_landing"), "timestamp"),
                (resources.lake.read_landing("step_trainer_landing"), "sensorReadingTime"),
            ]
        except FileNotFoundError:
            return None
        return landing_day_range(readings)


def _root_cause(error: Any) -> str:  # SerializableErrorInfo
    """The innermost error's message: what went wrong, not Dagster's wrapper around it."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def _violations(metadata: dict[str, Any]) -> int | None:
    value = metadata.get("violations")
    return None if value is None else int(value.value)
