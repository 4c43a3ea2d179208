"""A new day through the sensor path, for the benchmark: evaluates ``landing_sensor`` as the
daemon would, then carries out the runs it requests, in this one process, as ``stedi run`` does.

    python benchmarks/sensor_day_run.py --lake LAKE --cursor FILE --save-cursor  # before the day
    python benchmarks/sensor_day_run.py --lake LAKE --cursor FILE                # after: run it

The first form only records the sensor's cursor (the landing files it has seen). The second
evaluates the sensor against that cursor, prints each run it requests (its days, its trigger)
and runs it with ``run_lakehouse`` (privacy profile), printing ``stedi run``'s step table.
"""

import argparse
import sys
import time
from pathlib import Path

STARTED = time.time()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True)
    parser.add_argument("--cursor", type=Path, required=True)
    parser.add_argument("--save-cursor", action="store_true")
    args = parser.parse_args()

    from dagster import DagsterInstance, SkipReason, build_sensor_context

    from stedi_assets.partitions import RANGE_END_TAG, RANGE_START_TAG
    from stedi_assets.runner import run_lakehouse
    from stedi_assets.sensors import landing_sensor
    from stedi_assets.settings import Settings, landing_files

    settings = Settings.from_env(lake=args.lake)
    cursor = None if args.save_cursor else args.cursor.read_text()
    with (
        DagsterInstance.ephemeral() as instance,
        build_sensor_context(
            instance=instance,
            cursor=cursor,
            resources={"landing_files": landing_files(settings)},
        ) as context,
    ):
        result = landing_sensor(context)
        if args.save_cursor:
            args.cursor.write_text(context.cursor or result.cursor)
            return 0
        if isinstance(result, SkipReason):
            print(f"the sensor requested no run: {result.skip_message}")
            return 1
        for request in result.run_requests:
            days = (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG])
            print(f"run requested: days {days[0]}..{days[1]}, {request.tags['stedi/trigger']}")
            if request.asset_selection is None:
                print("not a day run: the sensor asked for every day")
                return 1
            summary = run_lakehouse(
                settings, "privacy", instance=instance, days=days, log_level="WARNING"
            )
            for step in summary.steps:
                kind = "checks" if step.is_check else "asset"
                print(f"{step.step:<62} {kind:<7} {step.seconds:.2f}")
            steps = sum(step.seconds for step in summary.steps)
            print(f"{len(summary.steps)} steps in {steps:.1f} s; success {summary.success}")
            if summary.first_step_at is not None:
                print(
                    f"first step started {summary.first_step_at - STARTED:.1f} s after start "
                    f"(at {summary.first_step_at:.3f})"
                )
            for table, rows in sorted(summary.row_counts.items()):
                print(f"  {table}: {rows:,} rows")
            if not summary.success:
                print("\n".join(summary.failures), file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
