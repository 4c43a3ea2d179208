"""The landing sensor: new or changed landing files start the runs that take them through; and
the day-partitions sensor, which only keeps the day partitions following landing's days.

- A reading file (accelerometer, step trainer) in day folder D re-runs days D-1 to D+1 of the
  day-partitioned tables: a file may hold readings of the days next to its folder's (an upload
  crossing midnight, a phone uploading yesterday's readings). The changed days of one tick, with
  their neighbours, make one run per stretch of consecutive days.
- A customer file re-runs everything for every day landing may hold (the day folders' days and
  a day either side), in one run (one Spark job): a consent given or withdrawn changes which
  readings of every day may pass.
- A reading file outside any day folder may hold any day: it re-runs every day, like a
  customer file.

The cursor holds, per group of files (one entity's day folder, or its files in no day folder),
a digest of the group's file versions (path, size, modification time). A group whose digest
changed (a file added, changed or removed) starts work, whatever the files' modification
times: a copy that kept an older time (``cp -p``, ``rsync -a``) is seen as well. Run keys name
the digests, so a repeated tick cannot start the same work twice. The first tick (no cursor)
starts one run over every day, labelled as the initial scan.

The cursor moves when a run is requested. A run that fails is retried by Dagster's run
retries (``dagster.yaml``); after that, its days run again at the next change to their files,
or by hand.
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from stedi_assets.partitions import (
    DAY_PARTITIONED_TABLES,
    DAY_PARTITIONS,
    FIRST_DAY,
    RANGE_END_TAG,
    RANGE_START_TAG,
    last_plausible_day,
    partition_requests,
    range_tags,
)
from stedi_assets.storage.landing_files import LandingFile, LandingFiles

LAKEHOUSE_JOB = "stedi_lakehouse"

# A day's run rewrites that day of the reading tables and reads the customer tables as they
# are. Customer tables change only in all-days runs: every day's rows depend on them, so
# changing them in a one-day run would leave the other days inconsistent.
# The publish step comes last in every run: without it nothing the run wrote becomes current.
DAY_ASSETS = [AssetKey(name) for name in (*DAY_PARTITIONED_TABLES, "lakehouse_published")]


# The group of files outside any day folder (and every customer file).
UNDATED = "-"


def _group(file: LandingFile) -> str:
    return f"{file.entity}/{file.day or UNDATED}"


def _digest(texts: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(texts)).encode()).hexdigest()[:24]


def group_digests(files: Iterable[LandingFile]) -> dict[str, str]:
    """Per group of files (``entity/day``, or ``entity/-`` outside day folders), a digest of
    its file versions."""
    versions: dict[str, list[str]] = defaultdict(list)
    for file in files:
        versions[_group(file)].append(file.version)
    return {group: _digest(found) for group, found in versions.items()}


def _changes(groups: dict[str, str]) -> str:
    """Names a set of changes (group -> new digest): the run key of the work they start."""
    return _digest(f"{group}={digest}" for group, digest in groups.items())


def _cursor(text: str | None) -> dict[str, str] | None:
    """The group digests of the last tick; None before the first (or from an earlier
    version's cursor, which knew no groups: that tick is an initial scan)."""
    if not text:
        return None
    return json.loads(text).get("groups")


def plan_runs(
    changed: dict[str, str], known_days: set[str], *, initial: bool = False
) -> list[RunRequest]:
    """The runs that take the ``changed`` groups (group -> new digest, "" when the group is
    gone) through; ``known_days`` are the day folders in landing."""
    everything = initial or any(
        group.startswith("customer/") or group.endswith(f"/{UNDATED}") for group in changed
    )
    if everything:
        first, last = days_landing_may_hold(known_days) or (FIRST_DAY, FIRST_DAY)
        trigger = "initial scan" if initial else "customer or undated file"
        return [
            RunRequest(
                run_key=f"all-days {first}..{last}:{_changes(changed)}",
                tags={**range_tags(first, last), "stedi/trigger": trigger},
            )
        ]
    # A file in day folder D may hold readings of D-1 to D+1 (an upload crossing midnight, a
    # phone that uploads yesterday's readings): a change there re-runs those three days.
    by_day: dict[str, dict[str, str]] = defaultdict(dict)
    for group, digest in changed.items():
        folder = date.fromisoformat(group.split("/", 1)[1])
        for offset in (-1, 0, 1):
            day = (folder + timedelta(days=offset)).isoformat()
            if FIRST_DAY <= day <= last_plausible_day():
                by_day[day][group] = digest
    return [
        RunRequest(
            run_key=f"days {first}..{last}:{_changes(groups)}",
            asset_selection=DAY_ASSETS,
            tags={
                **range_tags(first, last),
                "stedi/trigger": f"landing files changed ({', '.join(sorted(groups))})",
            },
        )
        for first, last, groups in _contiguous(by_day)
    ]


def days_landing_may_hold(folder_days: Iterable[str]) -> tuple[str, str] | None:
    """The first and last day the readings in these day folders may have: a day either side
    of the folders', within the plausible days. None without day folders."""
    folders = sorted(folder_days)
    if not folders:
        return None
    first = (date.fromisoformat(folders[0]) - timedelta(days=1)).isoformat()
    last = (date.fromisoformat(folders[-1]) + timedelta(days=1)).isoformat()
    return max(first, FIRST_DAY), max(min(last, last_plausible_day()), FIRST_DAY)


def _contiguous(
    by_day: dict[str, dict[str, str]],
) -> list[tuple[str, str, dict[str, str]]]:
    """Runs of consecutive days, each with the changed groups that led to it: one run per
    stretch of days, so that overlapping neighbours are not written twice."""
    stretches: list[tuple[str, str, dict[str, str]]] = []
    for day in sorted(by_day):
        if stretches and date.fromisoformat(stretches[-1][1]) + timedelta(days=1) == (
            date.fromisoformat(day)
        ):
            first, _, groups = stretches[-1]
            stretches[-1] = (first, day, groups | by_day[day])
        else:
            stretches.append((day, day, dict(by_day[day])))
    return stretches


@sensor(
    job_name=LAKEHOUSE_JOB,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    description="Starts runs for new or changed files in the three landing folders.",
)
def landing_sensor(
    context: SensorEvaluationContext, landing_files: LandingFiles
) -> SensorResult | SkipReason:
    seen = _cursor(context.cursor)
    every_file = landing_files.files()
    listed = [f for f in every_file if not (f.day and f.day < FIRST_DAY)]
    too_early = [f.key for f in every_file if f.day and f.day < FIRST_DAY]
    if too_early:
        # No partition can hold them; say so rather than fail every tick.
        context.log.warning(f"ignoring files in day folders before {FIRST_DAY}: {too_early}")
    now = group_digests(listed)
    cursor = json.dumps({"groups": now}, sort_keys=True)
    if seen is None and not listed:
        return SkipReason("no landing files yet")
    known_days = {f.day for f in listed if f.day}
    if seen is None:
        runs = plan_runs(now, known_days, initial=True)
    else:
        changed = {g: d for g, d in now.items() if seen.get(g) != d}
        changed |= {g: "" for g in seen if g not in now}  # every file of the group removed
        if not changed:
            return SkipReason("no new, changed or removed landing files")
        runs = plan_runs(changed, known_days)
    if not runs:
        return SensorResult(run_requests=[], cursor=cursor)
    # The runs' days must be partitions before the runs start (Dagster adds them first).
    first = min(run.tags[RANGE_START_TAG] for run in runs)
    last = max(run.tags[RANGE_END_TAG] for run in runs)
    existing = context.instance.get_dynamic_partitions(DAY_PARTITIONS)
    return SensorResult(
        run_requests=runs,
        cursor=cursor,
        dynamic_partitions_requests=partition_requests(existing, first, last),
    )


@sensor(
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Keeps the day partitions covering every day landing may hold (starts no run).",
)
def day_partitions(
    context: SensorEvaluationContext, landing_files: LandingFiles
) -> SensorResult | SkipReason:
    days = days_landing_may_hold(f.day for f in landing_files.files() if f.day)
    if days is None:
        return SkipReason("no day folders in landing yet")
    requests = partition_requests(context.instance.get_dynamic_partitions(DAY_PARTITIONS), *days)
    if not requests:
        return SkipReason(f"the day partitions cover {days[0]} to {days[1]} already")
    return SensorResult(dynamic_partitions_requests=requests)
