"""Screenshot of the Dagster UI's asset graph (global asset lineage) for the README.

Starts the real ``dagster dev`` over a lake (by default a small simulated one in a temporary
folder), runs the ``stedi_lakehouse`` job through GraphQL so that the nodes show materialized
tables and passed checks, opens ``/asset-groups`` with every group expanded in headless
Chromium, waits until the rendered page names every asset, and writes the PNG. Every process
it starts is stopped before it exits.

Usage: python scripts/screenshot_asset_graph.py [--lake LAKE] [--output docs/asset-graph.png]
                                                 [--no-materialize]
Needs Java 17 (Spark) and Chromium: apt-get install chromium
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from stedi_assets.partitions import range_tags
from stedi_assets.runner import run_config
from stedi_assets.sensors import LAKEHOUSE_JOB
from stedi_assets.simulator import generate_landing, write_landing
from stedi_assets.storage.landing_files import LandingFiles
from stedi_assets_tests.chromium import find_chromium, screenshot_asset_graph
from stedi_assets_tests.dagster_process import REPO
from stedi_assets_tests.dagster_server import dagster_server

PRIVACY = run_config("privacy")


def landing_days(lake: Path) -> list[str]:
    """The day folders of the lake's landing files (no Spark needed)."""
    return sorted({f.day for f in LandingFiles(root=str(lake)).files() if f.day})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", type=Path, help="a lake to show (default: simulate one)")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "asset-graph.png")
    parser.add_argument(
        "--no-materialize",
        action="store_true",
        help="skip the run, so the graph shows never-materialized assets",
    )
    args = parser.parse_args(argv)
    find_chromium()  # fail before spending a minute on the server

    with tempfile.TemporaryDirectory(prefix="stedi-screenshot-") as temp:
        lake = args.lake.resolve() if args.lake else Path(temp) / "lake"
        if not args.lake:
            write_landing(str(lake), generate_landing(customers=16, days=2))
        started = time.monotonic()
        with dagster_server(lake) as server:
            print(f"dagster dev up on {server.url} in {time.monotonic() - started:.0f} s")
            days = landing_days(lake)
            if not args.no_materialize and days:
                # A single run over every day in landing, as `stedi run` does.
                run_id = server.launch_run(LAKEHOUSE_JOB, PRIVACY, range_tags(days[0], days[-1]))
                (run,) = server.wait_for_runs([run_id], timeout=600)
                print(f"run {run_id} of {LAKEHOUSE_JOB} over {days[0]}..{days[-1]}: {run.status}")
                if run.status != "SUCCESS":
                    print("\n".join(server.run_errors(run_id)), file=sys.stderr)
                    return 1
            path = screenshot_asset_graph(server, args.output)
            print(f"wrote {path} ({path.stat().st_size:,} bytes)")
            if not server.stop():
                print(f"processes had to be killed: {server.killed}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
