"""The write path alone, against another version of the project: the same rows written as
``accelerometer_trusted`` through each version's IO manager, on a fresh lake.

The rows are the accelerometer readings of ``make bench``'s data (SF50 unless
``--scale-factor`` says otherwise), de-duplicated and stored once as Parquet, so
every version gets exactly the same input and computes no rule. A run of one asset that reads
them and returns them with their ``day`` column (50 days) is materialized twice in a row in
one process: the first run creates the table, the second replaces the same days (a rerun). The
step's time is that of the version's write path: the write, its catalog commit and whatever
the version does to describe what it wrote (row counts, previews). A version with
write-audit-publish also publishes (its ``lakehouse_published`` step), which is counted too.

    python benchmarks/write_path.py --compare /tmp/80caeed   # git archive 80caeed | tar -x -C …

Each version runs in its own process (``python -P`` with the source tree on PYTHONPATH), three
times by default; the medians are printed.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

TABLE = "accelerometer_trusted"
MEASURED_STEPS = (TABLE, "lakehouse_published")


def make_rows(landing: Path, rows: Path) -> None:
    """The SF50 accelerometer readings that a trusted table would hold, as Parquet, and their
    first and last UTC day (``days.json`` next to them)."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = (
        SparkSession.builder.master("local[*]")
        .config("spark.driver.memory", os.environ.get("STEDI_SPARK_DRIVER_MEMORY", "2g"))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    schema = "user string, timestamp bigint, x double, y double, z double"
    readings = spark.read.schema(schema).option("recursiveFileLookup", "true").json(str(landing))
    complete = F.col("user").isNotNull() & F.col("timestamp").isNotNull()
    readings.where(complete).dropDuplicates().write.mode("overwrite").parquet(str(rows))
    day = F.to_date(F.timestamp_millis(F.col("timestamp"))).cast("string")
    first, last = spark.read.parquet(str(rows)).agg(F.min(day), F.max(day)).first()
    spark.stop()
    (rows.parent / "days.json").write_text(json.dumps([first, last]))


def measure(lake: Path, rows: Path, runs: int) -> list[dict[str, float]]:
    """Materializes the table ``runs`` times on ``lake`` with this process's project version;
    each run's seconds per measured step."""
    from dagster import AssetExecutionContext, DagsterEventType, DagsterInstance, asset, materialize
    from pyspark.sql import DataFrame, SparkSession

    from stedi_assets import partitions
    from stedi_assets.settings import Settings, build_resources

    @asset(
        name=TABLE,
        partitions_def=partitions.daily,
        backfill_policy=partitions.single_run,
        metadata=getattr(partitions, "DAY_PARTITIONED", {}),
    )
    def stored_rows(context: AssetExecutionContext) -> DataFrame:
        # The resources started the run's session: this is it, with the version's settings.
        spark = SparkSession.builder.getOrCreate()
        return partitions.readings_of_run_days(context, spark.read.parquet(str(rows)), "timestamp")

    selection = [stored_rows]
    try:  # write-audit-publish: the run's last step publishes
        from stedi_assets.assets.published import lakehouse_published

        selection.append(lakehouse_published)
    except ImportError:
        pass
    first, last = json.loads((rows.parent / "days.json").read_text())
    resources = build_resources(Settings.from_env(lake=str(lake)))
    results = []
    with tempfile.TemporaryDirectory() as home:
        instance = DagsterInstance.local_temp(home)
        if hasattr(partitions, "add_days"):  # days as dynamic partitions, added as runs see them
            partitions.add_days(instance, first, last)
        for _ in range(runs):
            result = materialize(
                selection,
                resources=resources,
                instance=instance,
                tags=partitions.range_tags(first, last),
            )
            if not result.success:
                raise RuntimeError(f"run {result.run_id} failed")
            started: dict[str, float] = {}
            seconds: dict[str, float] = {}
            for record in instance.all_logs(result.run_id):
                event = record.get_dagster_event() if record.is_dagster_event else None
                if event is None or event.step_key not in MEASURED_STEPS:
                    continue
                if event.event_type == DagsterEventType.STEP_START:
                    started[event.step_key] = record.timestamp
                elif event.event_type == DagsterEventType.STEP_SUCCESS:
                    seconds[event.step_key] = record.timestamp - started[event.step_key]
            results.append(seconds)
    return results


def run_version(source: Path | None, work_dir: Path, scale_factor: int) -> list[dict[str, float]]:
    """One process of ``source``'s version (the installed project when None): a create and a
    replace, on a fresh lake."""
    from run_benchmark import engine_env  # this folder's: the same environment as its runs

    lake = work_dir / f"write-path-sf{scale_factor}" / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    lake.mkdir(parents=True)
    env = engine_env(os.environ.get("STEDI_SPARK_DRIVER_MEMORY", "2g"), source)
    command = [sys.executable, "-P", __file__, "--child", "--work-dir", str(work_dir)]
    command += ["--scale-factor", str(scale_factor)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{source or 'installed'} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", type=Path, action="append", default=[], help="source tree")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale-factor", type=int, default=50)
    parser.add_argument(
        "--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "stedi-bench"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = args.work_dir / f"write-path-sf{args.scale_factor}"
    rows = work / "rows"
    if args.child:
        print(json.dumps(measure(work / "lake", rows, runs=2)))
        return 0
    if not (work / "days.json").exists():
        from run_benchmark import build_landing, reference_data

        landing = args.work_dir / f"sf{args.scale_factor}" / "landing"
        # make bench's scaled data, built here when it has not run yet.
        build_landing(reference_data(), landing, args.scale_factor)
        work.mkdir(parents=True, exist_ok=True)
        make_rows(landing / "accelerometer", rows)
    versions: list[Path | None] = [None, *args.compare]
    print(f"write path of {TABLE}, s per run (median of {args.repeat}): create, then replace")
    for source in versions:
        runs = [run_version(source, args.work_dir, args.scale_factor) for _ in range(args.repeat)]
        name = str(source) if source else "installed"
        for label, index in (("create", 0), ("replace", 1)):
            steps = {
                step: statistics.median(run[index].get(step, 0.0) for run in runs)
                for step in MEASURED_STEPS
            }
            totals = [sum(run[index].values()) for run in runs]
            parts = ", ".join(f"{step} {s:.1f}" for step, s in steps.items() if s)
            print(
                f"{name:<24} {label:<8} {statistics.median(totals):6.1f} "
                f"(runs {min(totals):.1f}-{max(totals):.1f}; {parts})",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
