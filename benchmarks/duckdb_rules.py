"""Runs ``duckdb_rules.sql`` (the privacy rules in DuckDB SQL) over a lake's landing zone and
writes the five tables as Parquet at the project's layout.

    python benchmarks/duckdb_rules.py --lake LAKE [--memory-limit 2GB] [--threads N]
"""

import argparse
import os
import sys
from pathlib import Path

import duckdb

SQL = Path(__file__).with_name("duckdb_rules.sql")
OUTPUTS = (
    "customer/trusted",
    "accelerometer/trusted",
    "customer/curated",
    "step_trainer/trusted",
    "machine_learning/curated",
)


def run(lake: Path, memory_limit: str, threads: int) -> None:
    # DuckDB's globs do not descend into symlinked folders, and the benchmark links the
    # landing zone into each run's lake: resolve the links first.
    globs = {
        f"landing_{entity}": str((lake / entity / "landing").resolve() / "**" / "*.json")
        for entity in ("customer", "accelerometer", "step_trainer")
    }
    for relative in OUTPUTS:
        (lake / relative).mkdir(parents=True, exist_ok=True)
    sql = SQL.read_text()
    for key, value in {**globs, "out": str(lake)}.items():
        sql = sql.replace("{" + key + "}", value)
    connection = duckdb.connect(config={"memory_limit": memory_limit, "threads": threads})
    try:
        # Spill files (if any) go inside the lake, not into the working directory.
        connection.execute(f"SET temp_directory = '{lake / '_duckdb_tmp'}'")
        connection.execute(sql)
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True, type=Path)
    # The Spark runs get STEDI_SPARK_DRIVER_MEMORY; DuckDB gets the same budget by default.
    parser.add_argument(
        "--memory-limit",
        default=os.environ.get("STEDI_SPARK_DRIVER_MEMORY", "2g").upper().rstrip("B") + "B",
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    run(args.lake.resolve(), args.memory_limit, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
