"""The ``stedi`` command: simulate landing data, run the lakehouse, query its tables."""

import argparse
import sys
from collections.abc import Sequence

from dagster import build_resources

from stedi_assets.rules import Profile
from stedi_assets.settings import Settings
from stedi_assets.settings import build_resources as lakehouse_resources
from stedi_assets.storage.layout import TABLES


def _simulate(args: argparse.Namespace) -> int:
    from stedi_assets.simulator import generate_landing, summarize, write_landing

    files = generate_landing(customers=args.customers, days=args.days, seed=args.seed)
    write_landing(Settings.from_env(lake=args.lake).lake_root, files)
    summary = summarize(files)
    print(
        f"wrote {summary.files} landing files to {args.lake}: {summary.customers} customers "
        f"({summary.consenting_customers} consenting), {summary.accelerometer_rows} accelerometer "
        f"and {summary.step_trainer_rows} step-trainer rows over {len(summary.days)} day(s)"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from stedi_assets.runner import run_lakehouse

    summary = run_lakehouse(
        Settings.from_env(lake=args.lake), args.profile, log_level=args.log_level.upper()
    )
    print(f"\nprofile {args.profile}, lake {args.lake}, run {summary.run_id}\n")
    print(
        _table(
            ["table", "rows"],
            [
                [
                    t,
                    f"{summary.row_counts.get(t, '-'):,}"
                    if t in summary.row_counts
                    else "not materialized",
                ]
                for t in TABLES
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
    from pyspark.errors import AnalysisException

    from stedi_assets.query import register_views

    resources = lakehouse_resources(Settings.from_env(lake=args.lake))
    with build_resources({"lake": resources["lake"]}) as initialized:
        tables = register_views(initialized.lake)
        try:
            result = initialized.lake.spark_session.sql(args.sql)
        except AnalysisException as error:
            known = ", ".join(tables) or "none (run `stedi run` first)"
            print(f"stedi: {error.getMessage()}\ntables: {known}", file=sys.stderr)
            return 2
        result.show(args.limit, truncate=False)
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
    simulate.set_defaults(handler=_simulate)

    run = commands.add_parser("run", help="materialize every table and run every check")
    run.add_argument("--lake", help=lake_help)
    run.add_argument("--profile", choices=[p.value for p in Profile], default=Profile.privacy.value)
    run.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    run.set_defaults(handler=_run)

    query = commands.add_parser("query", help="run SQL over the tables, by their names")
    query.add_argument("--lake", help=lake_help)
    query.add_argument("--limit", type=int, default=50, help="rows to print (default 50)")
    query.add_argument("sql")
    query.set_defaults(handler=_query)
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
