"""The ``stedi`` command: simulate landing data, run the lakehouse, query its tables."""

import argparse
import datetime
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stedi_assets.profiles import Profile
from stedi_assets.settings import Settings
from stedi_assets.storage.layout import ASSET_TABLES

# When `stedi` started, near enough: the interpreter imports this module first, and the
# imports above are light (no Dagster, no Spark).
_STARTED = time.time()


def _simulate(args: argparse.Namespace) -> int:
    from stedi_assets.simulator import generate_landing, summarize, write_landing

    files = generate_landing(
        customers=args.customers,
        days=args.days,
        seed=args.seed,
        start=datetime.date.fromisoformat(args.start),
    )
    if args.readings_only:
        # More days of the same customers' readings: no customer file, so the sensor runs
        # just the new days.
        files = [f for f in files if f.entity != "customer"]
    write_landing(Settings.from_env(lake=args.lake).lake_root, files)
    summary = summarize(files)
    print(
        f"wrote {summary.files} landing files to {args.lake}: {summary.customers} customers "
        f"({summary.consenting_customers} consenting), {summary.accelerometer_rows} accelerometer "
        f"and {summary.step_trainer_rows} step-trainer rows over {len(summary.days)} day(s)"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from stedi_assets.partitions import parse_days
    from stedi_assets.runner import run_lakehouse

    days = parse_days(args.days) if args.days else None
    summary = run_lakehouse(
        Settings.from_env(lake=args.lake),
        args.profile,
        log_level=args.log_level.upper(),
        days=days,
    )
    print(f"\nprofile {args.profile}, lake {args.lake}, run {summary.run_id}\n")
    print(
        _table(
            ["table", "rows", "quarantined"],
            [
                [
                    table,
                    f"{summary.row_counts[table]:,}"
                    if table in summary.row_counts
                    else "not materialized",
                    f"{summary.quarantined[table]:,}" if table in summary.quarantined else "",
                ]
                for table in ASSET_TABLES
            ],
        )
    )
    print()
    print(
        _table(
            ["asset", "check", "result", "violations"],
            [
                [c.asset, c.name, _verdict(c), "" if c.violations is None else f"{c.violations:,}"]
                for c in summary.checks
            ],
        )
    )
    for check in summary.checks:
        if not check.passed and check.description:  # names the table, rule and files
            print(f"  {check.asset}.{check.name}: {check.description}")
    print()
    print(
        _table(
            ["step", "kind", "seconds"],
            [
                [t.step, "checks" if t.is_check else "asset", f"{t.seconds:.2f}"]
                for t in summary.steps
            ],
        )
    )
    checks = sum(t.seconds for t in summary.steps if t.is_check)
    assets = sum(t.seconds for t in summary.steps if not t.is_check)
    print(
        f"{len(summary.steps)} steps in {assets + checks:.1f} s: "
        f"assets {assets:.1f} s, checks {checks:.1f} s"
    )
    if summary.first_step_at is not None:
        # Start-up: imports, the JVM, the lake's housekeeping and any landing listing.
        print(
            f"first step started {summary.first_step_at - _STARTED:.1f} s after start "
            f"(at {summary.first_step_at:.3f})"
        )
    if not summary.success:
        failed = ", ".join(f"{c.asset}.{c.name}" for c in summary.blocking_failures) or "a step"
        print(f"\nrun failed: {failed} failed; downstream assets were not materialized")
        for failure in summary.failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0


def _verdict(check) -> str:  # CheckOutcome
    if check.passed:
        return "passed"
    return "FAILED (blocking)" if check.blocking_failure else "failed (reported)"


def _query(args: argparse.Namespace) -> int:
    from stedi_assets.query import NotReadOnly, check_read_only

    try:
        check_read_only(args.sql)  # before any engine sees the statement
    except NotReadOnly as refused:
        print(f"stedi: query refused: {refused}", file=sys.stderr)
        return 2
    settings = Settings.from_env(lake=args.lake)
    engine = args.engine or ("spark" if settings.is_s3 else "duckdb")
    if engine == "athena":
        return _query_athena(args)
    if engine == "duckdb":
        return _query_duckdb(args, settings)
    from pyspark.errors import PySparkException

    from stedi_assets.query_spark import (
        check_spark_plan,
        prepare_read_only_session,
        register_views,
    )

    with _read_only_lake(args.lake) as lake:
        spark = lake.spark_session
        prepare_read_only_session(spark)
        tables = register_views(lake)
        try:
            check_spark_plan(spark, args.sql)
            result = spark.sql(args.sql)
            result.show(args.limit, truncate=False)
        except NotReadOnly as refused:
            print(f"stedi: query refused: {refused}", file=sys.stderr)
            return 2
        except PySparkException as error:
            known = ", ".join(tables) or "none (run `stedi run` first)"
            print(f"stedi: {_one_line(error)}\ntables: {known}", file=sys.stderr)
            return 2
    return 0


def _query_duckdb(args: argparse.Namespace, settings: Settings) -> int:
    import duckdb

    from stedi_assets.query_duckdb import query_local

    if settings.is_s3:
        print("stedi: --engine duckdb reads local lakes; use --engine spark", file=sys.stderr)
        return 2
    if not Path(settings.lake_root).is_dir():
        raise FileNotFoundError(f"the lake {settings.lake_root} does not exist")
    try:
        result = query_local(
            settings.lake_root, settings.catalog_file, settings.database, args.sql, args.limit
        )
    except duckdb.Error as error:
        first = str(error).strip().splitlines()[0]
        print(f"stedi: {type(error).__name__}: {first}", file=sys.stderr)
        return 2
    rows = [["NULL" if v is None else str(v) for v in row] for row in result.rows]
    print(_table(result.columns, rows))
    return 0


def _one_line(error: Exception) -> str:
    """Spark's error class and the first line of its message, without the JVM stack."""
    condition = getattr(error, "getCondition", lambda: None)() or type(error).__name__
    message = getattr(error, "getMessage", lambda: str(error))() or str(error)
    first = message.strip().splitlines()[0] if message.strip() else ""
    return f"{condition}: {first.removeprefix(f'[{condition}] ')}"


def _history(args: argparse.Namespace) -> int:
    from stedi_assets.storage import iceberg

    with _read_only_lake(args.lake) as lake:
        snapshots = iceberg.history(lake.spark_session, lake.catalog, _lake_table(args.table))
        current = lake.main_snapshot(args.table)
        rows = [
            [
                s.committed_at.strftime("%Y-%m-%d %H:%M:%S"),
                str(s.snapshot_id) + (" (current)" if s.snapshot_id == current else ""),
                s.run_id or "",
                s.operation,
                f"{s.total_records:,}",
            ]
            for s in snapshots
        ]
    print(_table(["committed (UTC)", "snapshot", "run", "operation", "rows"], rows))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from stedi_assets.storage import iceberg

    with _read_only_lake(args.lake) as lake:
        table = _lake_table(args.table)
        known = {s.snapshot_id for s in iceberg.history(lake.spark_session, lake.catalog, table)}
        if args.snapshot not in known:
            raise LookupError(
                f"{table} has no snapshot {args.snapshot} in its history (see `stedi history "
                f"{table}`; snapshots from before an erasure are gone)"
            )
        iceberg.rollback(lake.spark_session, lake.catalog, table, args.snapshot)
    print(f"{table} is at snapshot {args.snapshot}")
    return 0


def _lake_table(name: str) -> str:
    from stedi_assets.storage.layout import table_spec

    if table_spec(name).is_landing:
        raise ValueError(f"{name} is a landing table: it has no snapshots")
    return name


@contextmanager
def _read_only_lake(lake: str | None) -> Iterator[Any]:
    from dagster import build_resources

    from stedi_assets.settings import build_resources as lakehouse_resources

    resources = lakehouse_resources(Settings.from_env(lake=lake), writes=False)
    with build_resources({"lake": resources["lake"]}) as initialized:
        yield initialized.lake


def _query_athena(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError
    from dagster_aws.athena import AthenaError

    from stedi_assets.aws.athena import results_location, run_athena_query

    settings = Settings.from_env(lake=args.lake)
    try:
        rows = run_athena_query(args.sql, settings.database, results_location(settings.lake_root))
    except (AthenaError, BotoCoreError, ClientError) as error:
        print(f"stedi: athena: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    for row in rows[: args.limit]:
        print("\t".join("NULL" if v is None else v for v in row))
    print(f"({len(rows)} row(s) from Athena, database {settings.database})", file=sys.stderr)
    return 0


def _provision(args: argparse.Namespace) -> int:
    from stedi_assets.aws.provision import provision, resolve_target

    settings = Settings.from_env(lake=args.lake)
    if not settings.is_s3:
        raise ValueError(f"provision needs an s3://bucket/prefix lake, not {settings.lake!r}")
    provision(resolve_target(settings.lake_root, settings.database), dry_run=args.dry_run)
    return 0


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(v)) for v in column) for column in zip(header, *rows, strict=False)]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join(
        "  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=True)) for line in lines
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="stedi", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    lake_help = "lake root: a folder or s3://bucket/prefix (default: $STEDI_LAKE or ./lake)"

    simulate = commands.add_parser("simulate", help="write simulated landing JSON to a lake")
    simulate.add_argument("--lake", help=lake_help)
    simulate.add_argument("--customers", type=int, default=40)
    simulate.add_argument("--days", type=int, default=3)
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--start", default="2022-06-18", help="first UTC day (YYYY-MM-DD)")
    simulate.add_argument(
        "--readings-only", action="store_true", help="write no customer file, only readings"
    )
    simulate.set_defaults(handler=_simulate)

    run = commands.add_parser("run", help="materialize every table and run every check")
    run.add_argument("--lake", help=lake_help)
    run.add_argument("--profile", choices=[p.value for p in Profile], default=Profile.privacy.value)
    run.add_argument(
        "--days",
        "--day",
        metavar="D[..D2]",
        help="only these UTC days of the day-partitioned tables (default: every day in landing)",
    )
    run.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    run.set_defaults(handler=_run)

    query = commands.add_parser("query", help="run SQL over the tables, by their names")
    query.add_argument("--lake", help=lake_help)
    query.add_argument("--limit", type=int, default=50, help="rows to print (default 50)")
    query.add_argument(
        "--engine",
        choices=["duckdb", "spark", "athena"],
        default=None,
        help="duckdb: pyiceberg and DuckDB, no JVM (default on a local lake); spark: Spark "
        "over the catalog (default on S3); athena: AWS Athena over Glue",
    )
    query.add_argument("sql")
    query.set_defaults(handler=_query)

    history = commands.add_parser("history", help="a table's snapshots: time, run, rows")
    history.add_argument("--lake", help=lake_help)
    history.add_argument("table")
    history.set_defaults(handler=_history)

    rollback = commands.add_parser(
        "rollback", help="make an earlier snapshot of a table current (undo a bad run)"
    )
    rollback.add_argument("--lake", help=lake_help)
    rollback.add_argument("table")
    rollback.add_argument("snapshot", type=int)
    rollback.set_defaults(handler=_rollback)

    provision = commands.add_parser(
        "provision", help="create the bucket, Glue databases and IAM roles an s3:// lake needs"
    )
    provision.add_argument("--lake", help="s3://bucket/prefix (default: $STEDI_LAKE)")
    provision.add_argument(
        "--dry-run", action="store_true", help="print the plan and change nothing"
    )
    provision.set_defaults(handler=_provision)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except (FileNotFoundError, LookupError, ValueError) as error:
        print(f"stedi: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
