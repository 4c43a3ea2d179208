"""The landing sensor: new or changed landing files start the runs that take them through.

- A reading file (accelerometer, step trainer) in a day folder re-runs that day of the three
  day-partitioned tables. Several files of one day in one tick: one run.
- A customer file re-runs everything for every day in landing, in one run (one Spark job):
  a consent given or withdrawn changes which readings of every day may pass.
- A reading file outside any day folder may hold any day: it re-runs every day, like a
  customer file.

The cursor holds the newest modification time seen and the file versions seen at exactly that
time, so each file version starts work once; run keys name the file versions, so a repeated
tick cannot start the same work twice.
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from stedi_assets.partitions import DAY_PARTITIONED_TABLES, FIRST_DAY, range_tags
from stedi_assets.storage.landing_files import LandingFile, LandingFiles

LAKEHOUSE_JOB = "stedi_lakehouse"

# A day's run rewrites that day of the reading tables and reads the customer tables as they
# are. Customer tables change only in all-days runs: every day's rows depend on them, so
# changing them in a one-day run would leave the other days inconsistent.
# The publish step comes last in every run: without it nothing the run wrote becomes current.
DAY_ASSETS = [AssetKey(name) for name in (*DAY_PARTITIONED_TABLES, "lakehouse_published")]


def _cursor(text: str | None) -> tuple[int, set[str]]:
    if not text:
        return 0, set()
    state = json.loads(text)
    return int(state["watermark_ms"]), set(state["at_watermark"])


def _new_cursor(files: list[LandingFile], watermark: int, at_watermark: set[str]) -> str:
    if files:
        newest = max(f.modified_ms for f in files)
        if newest > watermark:
            watermark, at_watermark = newest, set()
        at_watermark |= {f.version for f in files if f.modified_ms == watermark}
    return json.dumps({"watermark_ms": watermark, "at_watermark": sorted(at_watermark)})


def _run_key(kind: str, files: Iterable[LandingFile]) -> str:
    digest = hashlib.sha256("\n".join(sorted(f.version for f in files)).encode()).hexdigest()
    return f"{kind}:{digest[:24]}"


def plan_runs(new: list[LandingFile], known_days: set[str]) -> list[RunRequest]:
    """The runs that take ``new`` files through; ``known_days`` are the day folders in landing."""
    everything = [f for f in new if f.entity == "customer" or f.day is None]
    if everything:
        first, last = (min(known_days), max(known_days)) if known_days else (FIRST_DAY, FIRST_DAY)
        return [
            RunRequest(
                run_key=_run_key(f"all-days {first}..{last}", new),
                tags={**range_tags(first, last), "stedi/trigger": "customer or undated file"},
            )
        ]
    by_day: dict[str, list[LandingFile]] = defaultdict(list)
    for file in new:
        by_day[file.day].append(file)
    return [
        RunRequest(
            run_key=_run_key(f"day {day}", files),
            partition_key=day,
            asset_selection=DAY_ASSETS,
            tags={"stedi/trigger": f"{len(files)} new landing file(s)"},
        )
        for day, files in sorted(by_day.items())
    ]


@sensor(
    job_name=LAKEHOUSE_JOB,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    description="Starts runs for new or changed files in the three landing folders.",
)
def landing_sensor(
    context: SensorEvaluationContext, landing_files: LandingFiles
) -> SensorResult | SkipReason:
    watermark, at_watermark = _cursor(context.cursor)
    listed = landing_files.files()
    new = [
        f
        for f in listed
        if f.modified_ms > watermark
        or (f.modified_ms == watermark and f.version not in at_watermark)
    ]
    if not new:
        return SkipReason("no new landing files")
    too_early = [f.key for f in new if f.day and f.day < FIRST_DAY]
    if too_early:
        # No partition can hold them; say so rather than fail every tick.
        context.log.warning(f"ignoring files in day folders before {FIRST_DAY}: {too_early}")
        new = [f for f in new if not (f.day and f.day < FIRST_DAY)]
    known_days = {f.day for f in listed if f.day and f.day >= FIRST_DAY}
    return SensorResult(
        run_requests=plan_runs(new, known_days) if new else [],
        cursor=_new_cursor(new, watermark, at_watermark),
    )
