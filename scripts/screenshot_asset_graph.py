"""Screenshots of the Dagster UI for the README: the asset graph, an asset's page with its
metadata and checks, and its partitions.

Starts the real ``dagster dev`` over a lake (by default a small simulated one in a temporary
folder), waits for the ``day_partitions`` sensor to add landing's days, presses "Materialize
all" (an asset backfill of every asset over every partition, through GraphQL) so that the nodes
show materialized tables and passed checks, and writes the PNGs with headless Chromium. Every
process it starts is stopped before it exits.

Usage: python scripts/screenshot_asset_graph.py [--lake LAKE] [--output-dir docs]
                                                 [--no-materialize]
Needs Java 17 (Spark) and Chromium: apt-get install chromium
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from stedi_assets.simulator import generate_landing, write_landing
from stedi_assets.storage.landing_files import LandingFiles
from stedi_assets_tests.chromium import find_chromium, screenshot_asset_graph, screenshot_page
from stedi_assets_tests.dagster_process import REPO
from stedi_assets_tests.dagster_server import DagsterServer, dagster_server

ASSET = "machine_learning_curated"


def landing_days(lake: Path) -> list[str]:
    """The day folders of the lake's landing files (no Spark needed)."""
    return sorted({f.day for f in LandingFiles(root=str(lake)).files() if f.day})


def wait_for_day_partitions(server: DagsterServer, timeout: float = 120.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while not (days := server.partition_keys(ASSET)):
        if time.monotonic() > deadline:
            raise TimeoutError("the day_partitions sensor added no day within 2 minutes")
        time.sleep(1.0)
    return days


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", type=Path, help="a lake to show (default: simulate one)")
    parser.add_argument("--output-dir", type=Path, default=REPO / "docs")
    parser.add_argument(
        "--no-materialize",
        action="store_true",
        help="skip Materialize all, so the graph shows never-materialized assets",
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
            if not args.no_materialize and landing_days(lake):
                days = wait_for_day_partitions(server)
                backfill = server.launch_backfill(server.asset_groups())
                status = server.wait_for_backfill(backfill, timeout=1200)
                print(f"Materialize all over {days[0]}..{days[-1]}: backfill {status}")
                if status != "COMPLETED_SUCCESS":
                    for run in server.runs(tags={"dagster/backfill": backfill}):
                        print("\n".join(server.run_errors(run.run_id)), file=sys.stderr)
                    return 1
            shots = [screenshot_asset_graph(server, args.output_dir / "asset-graph.png")]
            page = f"{server.url}/assets/{ASSET}"
            shots.append(screenshot_page(page, args.output_dir / "asset-page.png"))
            # One day picked, so that its own metadata shows beside the list of days.
            day = landing_days(lake)[-1] if landing_days(lake) else ""
            partitions = f"{page}?view=partitions&partition={day}"
            shots.append(screenshot_page(partitions, args.output_dir / "asset-partitions.png"))
            for path in shots:
                print(f"wrote {path} ({path.stat().st_size:,} bytes)")
            if not server.stop():
                print(f"processes had to be killed: {server.killed}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
