"""Benchmark: this project's whole graph against a plain PySpark script and DuckDB SQL, all
applying the privacy profile's rules to the same landing data at several scale factors.

For each scale factor k the reference data (``STEDI_REFERENCE_DATA``, default
``../shared/reference-data``, all of whose readings fall on 2022-06-18) is replicated k times,
spanning k days as real uploads do: copy i of every customer gets a suffixed e-mail and serial
number (copy 0 keeps its own), and so do its readings; every time stamp and consent date of copy
i is shifted by i days, and its files sit in that day's folder (``<entity>/landing/YYYY-MM-DD/``).
Every consent-time relationship stays within a copy, so every privacy count scales by exactly k.

Each engine runs in its own fresh process; the script polls the RSS and CPU time of that
process and all its descendants (the JVM included) through /proc, checks that the three engines
wrote the same row counts, and prints a Markdown table.

    .venv/bin/python benchmarks/run_benchmark.py [--scale-factors 1 50] [--repeat 3] [--work-dir D]
"""

import argparse
import datetime
import itertools
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
ENTITIES = ("customer", "accelerometer", "step_trainer")
OUTPUT_TABLES = {
    "customer_trusted": "customer/trusted",
    "accelerometer_trusted": "accelerometer/trusted",
    "customers_curated": "customer/curated",
    "step_trainer_trusted": "step_trainer/trusted",
    "machine_learning_curated": "machine_learning/curated",
}
ENGINES = ("project", "plain_pyspark", "duckdb")
POLL_SECONDS = 0.2
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- landing data --------------------------------------------------------------------------


def reference_data() -> Path:
    path = Path(os.environ.get("STEDI_REFERENCE_DATA", REPO.parent / "shared" / "reference-data"))
    if not (path / "customer" / "landing").is_dir():
        raise SystemExit(f"reference data not found at {path}; set STEDI_REFERENCE_DATA")
    return path


def _suffixed_email(email: str, copy: int) -> str:
    local, at, domain = email.partition("@")
    return f"{local}+c{copy}{at}{domain}"


DAY_MS = 86_400_000
FIRST_DAY = datetime.date(2022, 6, 18)  # the reference data's one day of readings
# The landing DDL's epoch-millisecond columns: shifted together, they keep every relationship.
TIME_FIELDS = {
    "customer": (
        "registrationDate",
        "lastUpdateDate",
        "shareWithResearchAsOfDate",
        "shareWithPublicAsOfDate",
        "shareWithFriendsAsOfDate",
    ),
    "accelerometer": ("timestamp", "timeStamp"),
    "step_trainer": ("sensorReadingTime",),
}


def copy_day(copy: int) -> str:
    return (FIRST_DAY + datetime.timedelta(days=copy)).isoformat()


def _scaled_record(entity: str, record: dict, copy: int, shift: int | None = None) -> dict:
    """Copy ``copy`` of a landing record: its owner's identifiers suffixed and its times
    shifted by ``shift`` days (``copy`` unless given)."""
    shift = copy if shift is None else shift
    if copy == 0 and shift == 0:
        return record
    scaled = dict(record)
    for name in TIME_FIELDS[entity]:
        if isinstance(scaled.get(name), int) and not isinstance(scaled[name], bool):
            scaled[name] += shift * DAY_MS
    if copy == 0:
        return scaled
    if entity == "customer":
        if isinstance(scaled.get("email"), str):
            scaled["email"] = _suffixed_email(scaled["email"], copy)
        if isinstance(scaled.get("serialNumber"), str):
            scaled["serialNumber"] = f"{scaled['serialNumber']}-c{copy}"
    elif entity == "accelerometer":
        if isinstance(scaled.get("user"), str):
            scaled["user"] = _suffixed_email(scaled["user"], copy)
    elif isinstance(scaled.get("serialNumber"), str):
        scaled["serialNumber"] = f"{scaled['serialNumber']}-c{copy}"
    return scaled


LAYOUT_VERSION = 2  # 2: copies span days, in day folders


def build_landing(reference: Path, target: Path, scale: int) -> int:
    """Writes the scaled landing zone below ``target`` (once; reused when complete) and returns
    its row count: copy i of each source file goes to ``<entity>/landing/<day i>/``. Streams
    line by line: one source line in memory, never a whole file."""
    marker = target / "_complete.json"
    expected = {"scale": scale, "reference": str(reference), "layout": LAYOUT_VERSION}
    if marker.exists():
        info = json.loads(marker.read_text())
        if {key: info.get(key) for key in expected} == expected:
            return int(info["rows"])
    if target.exists():
        shutil.rmtree(target)
    rows = 0
    for entity in ENTITIES:
        source_dir = reference / entity / "landing"
        out_dir = target / entity / "landing"
        for source in sorted(p for p in source_dir.rglob("*") if p.is_file()):
            relative = source.relative_to(source_dir)
            sinks = []
            for copy in range(scale):
                out = out_dir / copy_day(copy) / relative
                out.parent.mkdir(parents=True, exist_ok=True)
                sinks.append(out.open("w", encoding="utf-8"))
            try:
                with source.open(encoding="utf-8") as lines:
                    for line in lines:
                        if not line.strip():
                            continue
                        record = json.loads(line)
                        for copy, sink in enumerate(sinks):
                            sink.write(json.dumps(_scaled_record(entity, record, copy)))
                            sink.write("\n")
                        rows += scale
            finally:
                for sink in sinks:
                    sink.close()
    marker.write_text(json.dumps({**expected, "rows": rows}))
    return rows


def fresh_lake(landing: Path, lake: Path) -> Path:
    """An empty lake whose landing folders link to the shared scaled landing data."""
    if lake.exists():
        shutil.rmtree(lake)
    for entity in ENTITIES:
        (lake / entity).mkdir(parents=True)
        (lake / entity / "landing").symlink_to(landing / entity / "landing")
    return lake


READING_ENTITIES = ("accelerometer", "step_trainer")


def add_reading_day(reference: Path, lake: Path, scale: int) -> tuple[str, int]:
    """Adds one new day of readings to ``lake`` (after a run over its ``scale`` days): the
    readings of the last copy's customers, a day later, in the next day folder. The lake's
    landing folders become real folders linking each existing day folder, so the shared
    landing data stays as it is. Returns the new day and its rows."""
    day, rows = copy_day(scale), 0
    for entity in READING_ENTITIES:
        landing = lake / entity / "landing"
        shared = landing.resolve()
        landing.unlink()
        landing.mkdir()
        for folder in sorted(shared.iterdir()):
            if folder.is_dir():
                (landing / folder.name).symlink_to(folder)
        source_dir = reference / entity / "landing"
        for source in sorted(p for p in source_dir.rglob("*") if p.is_file()):
            out = landing / day / source.relative_to(source_dir)
            out.parent.mkdir(parents=True, exist_ok=True)
            with source.open(encoding="utf-8") as lines, out.open("w", encoding="utf-8") as sink:
                for line in lines:
                    if line.strip():
                        record = _scaled_record(entity, json.loads(line), scale - 1, scale)
                        sink.write(json.dumps(record) + "\n")
                        rows += 1
    return day, rows


# --- measuring a process tree --------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) may hold spaces; everything after its closing ")" is space-separated.
    return stat.rsplit(")", 1)[1].split()


def _process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, pending = [root], [root]
    while pending:
        for child in children.get(pending.pop(), []):
            tree.append(child)
            pending.append(child)
    return tree


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


SPARK_LAUNCHER = "org.apache.spark.launcher.Main"


def _java_main_class(cmdline: str) -> str:
    """The first ``org.apache.spark`` class named on a java command line (its main class)."""
    return next((t for t in cmdline.split() if t.startswith("org.apache.spark.")), cmdline[:80])


@dataclass
class Measurement:
    engine: str
    scale: int
    returncode: int = -1
    wall_s: float = 0.0
    cpu_s: float = 0.0  # user + system of every process of the tree, as last seen
    peak_rss_mb: float = 0.0  # max over samples of the tree's summed RSS
    peak_jvm_rss_mb: float = 0.0  # the same, java processes only
    java_processes: int = 0  # distinct JVMs seen (Spark's launcher included)
    spark_jvms: int = 0  # of which not Spark's launcher: drivers (and executors, if any)
    java_main_classes: list[str] = field(default_factory=list)
    load_before: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    log: str = ""
    first_step_s: float | None = None  # start-up: from the process's start to its first step


def measure(command: list[str], env: dict[str, str], log: Path, result: Measurement) -> None:
    """Runs ``command`` and samples its process tree every POLL_SECONDS until it exits."""
    result.load_before = os.getloadavg()[0]
    cpu_ticks: dict[tuple[int, str], int] = {}
    javas: dict[tuple[int, str], tuple[int, str]] = {}  # (pid, start) -> (ppid, command line)
    started = time.monotonic()
    started_epoch = time.time()
    with log.open("w") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
        while True:
            # wait4 also yields the child's own peak RSS and CPU time, exact even for a run
            # shorter than one sampling interval.
            done, status, usage = os.wait4(process.pid, os.WNOHANG)
            if done:
                process.returncode = os.waitstatus_to_exitcode(status)
                break
            sample: dict[int, tuple[int, int, bool]] = {}  # pid -> (ppid, rss pages, is java)
            for pid in _process_tree(process.pid):
                fields = _stat_fields(pid)
                if fields is None:
                    continue
                # utime, stime (fields 14, 15) and rss (24) of `man 5 proc`, minus the 2 before.
                key = (pid, fields[19])  # pid + start time: a reused pid is another process
                cpu_ticks[key] = int(fields[11]) + int(fields[12])
                try:
                    is_java = os.readlink(f"/proc/{pid}/exe").endswith("/java")
                except OSError:
                    is_java = False
                sample[pid] = (int(fields[1]), int(fields[21]), is_java)
                if is_java:
                    # Re-read every sample: spark-submit and spark-class are bash scripts that
                    # exec into java, so a pid's program and command line change over its life.
                    javas[key] = (int(fields[1]), _cmdline(pid) or javas.get(key, (0, ""))[1])
            # A JVM runs a shell command (Hadoop's local file system calls chmod) by forking a
            # child that shares its memory until it execs: that child's RSS is the JVM's again.
            own = {
                pid: (rss, is_java)
                for pid, (ppid, rss, is_java) in sample.items()
                if not (is_java and sample.get(ppid, (0, 0, False))[2])
            }
            rss_pages = sum(rss for rss, _ in own.values())
            jvm_pages = sum(rss for rss, is_java in own.values() if is_java)
            result.peak_rss_mb = max(result.peak_rss_mb, rss_pages * PAGE_SIZE / 2**20)
            result.peak_jvm_rss_mb = max(result.peak_jvm_rss_mb, jvm_pages * PAGE_SIZE / 2**20)
            # Densely at first: DuckDB at SF1 is done in a fraction of a second.
            time.sleep(POLL_SECONDS if time.monotonic() - started > 2 else POLL_SECONDS / 10)
    result.wall_s = time.monotonic() - started
    result.returncode = process.returncode
    result.cpu_s = max(sum(cpu_ticks.values()) / CLOCK_TICKS, usage.ru_utime + usage.ru_stime)
    result.peak_rss_mb = max(result.peak_rss_mb, usage.ru_maxrss / 1024)  # ru_maxrss is in KiB
    # Likewise such a forked child is no JVM of its own.
    java_pids = {pid for pid, _ in javas}
    jvms = [cmd for ppid, cmd in javas.values() if ppid not in java_pids]
    result.java_processes = len(jvms)
    result.java_main_classes = sorted(_java_main_class(cmd) for cmd in jvms)
    # Spark's launcher (a short JVM that only computes the real command line) is not a run.
    result.spark_jvms = sum(1 for c in result.java_main_classes if c != SPARK_LAUNCHER)
    result.log = str(log)
    first_step = FIRST_STEP.search(log.read_text(errors="replace"))
    if first_step:
        result.first_step_s = float(first_step[1]) - started_epoch


# `stedi run` (and sensor_day_run.py) print when their first step started.
FIRST_STEP = re.compile(r"first step started [-\d.]+ s after start \(at ([\d.]+)\)")


def table_counts(lake: Path) -> dict[str, int]:
    """Rows of each output table: from the Iceberg catalog's current snapshots (the project's
    lake, read with pyiceberg as another engine would), else from the Parquet footers."""
    catalog_file = lake / "_catalog" / "catalog.sqlite"
    if catalog_file.is_file():
        from pyiceberg.catalog.sql import SqlCatalog
        from pyiceberg.exceptions import NoSuchTableError

        # Its warning that Spark wrote the catalog in the version-0 layout is no news here.
        logging.getLogger("pyiceberg.catalog.sql").setLevel(logging.ERROR)

        catalog = SqlCatalog("lake", uri=f"sqlite:///{catalog_file}", warehouse=f"file://{lake}")
        try:
            return {
                table: int(
                    catalog.load_table(f"stedi.{table}").current_snapshot().summary["total-records"]
                )
                for table in OUTPUT_TABLES
            }
        except NoSuchTableError:  # a version before Iceberg (--project-src): Parquet tables
            pass
    counts = {}
    for table, relative in OUTPUT_TABLES.items():
        files = sorted((lake / relative).rglob("*.parquet"))
        counts[table] = sum(pq.ParquetFile(f).metadata.num_rows for f in files) if files else -1
    return counts


def engine_command(engine: str, lake: Path, project_src: Path | None) -> list[str]:
    python = str(VENV_BIN / "python")
    if engine == "project":
        # `stedi` of the installed (editable) project, or the same CLI from another source
        # tree (PYTHONPATH, see engine_env) such as a `git archive` of a commit. `-P`: `-m`
        # would otherwise put the working directory, this checkout, ahead of PYTHONPATH.
        cli = [python, "-P", "-m", "stedi_assets.cli"] if project_src else [str(VENV_BIN / "stedi")]
        # As a user runs it: its output ends with how long each step took.
        return [*cli, "run", "--lake", str(lake), "--profile", "privacy"]
    if engine == "plain_pyspark":
        return [python, str(BENCHMARKS / "plain_pyspark.py"), "--lake", str(lake)]
    return [python, str(BENCHMARKS / "duckdb_rules.py"), "--lake", str(lake)]


def engine_env(driver_memory: str, project_src: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STEDI_", "DAGSTER_HOME"))}
    if project_src is not None:
        # Ahead of the editable install's finder, which only serves what sys.path lacks.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(project_src), env.get("PYTHONPATH")]))
    env.update(
        STEDI_SPARK_DRIVER_MEMORY=driver_memory,  # both Spark runs, and DuckDB's memory limit
        SPARK_LOCAL_IP="127.0.0.1",
        PYTHONUNBUFFERED="1",
    )
    return env


QUERIES = {
    "query_count": "SELECT COUNT(*) FROM machine_learning_curated",
    "query_aggregate": "SELECT COUNT(DISTINCT serialNumber), AVG(distanceFromObject) "
    "FROM step_trainer_trusted",
}


def day_run_and_queries(
    reference: Path,
    lake: Path,
    scale: int,
    repetition: int,
    env: dict[str, str],
    project_src: Path | None,
) -> list[Measurement]:
    """On the lake the project's full run left: one new day of readings through the sensor
    path (its start-up is that of a second run in a row), then `stedi query` (DuckDB on the
    Iceberg tables) of a count and of a small aggregate."""
    python = str(VENV_BIN / "python")
    folder = lake.parent
    cursor = folder / "sensor-cursor.json"
    day_script = [python, str(BENCHMARKS / "sensor_day_run.py"), "--lake", str(lake)]
    subprocess.run(
        [*day_script, "--cursor", str(cursor), "--save-cursor"],
        env=env,
        check=True,
        capture_output=True,
    )
    day, rows = add_reading_day(reference, lake, scale)
    measured = []
    day_run = Measurement("project_day_run", scale)
    measure(
        [*day_script, "--cursor", str(cursor)],
        env,
        folder / f"project_day_run-{repetition + 1}.log",
        day_run,
    )
    measured.append(day_run)
    print(
        f"  project_day_run ({day}, {rows:,} new rows): rc {day_run.returncode}, "
        f"{day_run.wall_s:.1f}s wall, first step after {day_run.first_step_s or 0:.1f}s, "
        f"peak {day_run.peak_rss_mb:,.0f} MiB",
        flush=True,
    )
    cli = [python, "-m", "stedi_assets.cli"] if project_src else [str(VENV_BIN / "stedi")]
    for name, sql in QUERIES.items():
        query = Measurement(name, scale)
        measure(
            [*cli, "query", "--lake", str(lake), sql],
            env,
            folder / f"{name}-{repetition + 1}.log",
            query,
        )
        measured.append(query)
        answer = Path(query.log).read_text(errors="replace").strip().splitlines()[-1:]
        print(f"  {name}: rc {query.returncode}, {query.wall_s:.2f}s wall, {answer}", flush=True)
    return measured


# --- report ----------------------------------------------------------------------------------


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return f"{os.cpu_count()} cores, {mem_kb / 2**20:.1f} GiB RAM, {cpu}"


def report(results: list[Measurement], landing_rows: dict[int, int]) -> str:
    by = {(r.engine, r.scale): r for r in results}
    lines = [
        "| SF | landing rows | engine | wall s | CPU s | peak RSS MiB (JVM) | rows/s | JVMs "
        "| project / engine, wall | project / engine, CPU |",
        "|---:|---:|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for scale in sorted(landing_rows):
        project = by.get(("project", scale))
        for engine in ENGINES:
            r = by.get((engine, scale))
            if r is None:
                continue
            ratio = cpu_ratio = ""
            if project is not None and engine != "project" and r.wall_s and r.cpu_s:
                ratio = f"{project.wall_s / r.wall_s:.2f}x"
                cpu_ratio = f"{project.cpu_s / r.cpu_s:.2f}x"
            jvms = f"{r.spark_jvms} (+{r.java_processes - r.spark_jvms} launcher)"
            failed = "" if r.returncode == 0 else f" FAILED rc={r.returncode}"
            lines.append(
                f"| {scale} | {landing_rows[scale]:,} | {engine}{failed} | {r.wall_s:.1f} "
                f"| {r.cpu_s:.1f} | {r.peak_rss_mb:,.0f} ({r.peak_jvm_rss_mb:,.0f}) "
                f"| {landing_rows[scale] / r.wall_s:,.0f} | {jvms} | {ratio} | {cpu_ratio} |"
            )
    return "\n".join(lines)


def project_report(results: list[Measurement], landing_rows: dict[int, int]) -> str:
    """The project's own figures: start-up, a new day through the sensor, queries."""
    by = {(r.engine, r.scale): r for r in results}

    def seconds(value: float | None) -> str:
        return "" if value is None else f"{value:.1f}"

    lines = [
        "| SF | full run s | first step s (full run) | new day via sensor s | day / full "
        "| first step s (2nd run) | query count s | query aggregate s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scale in sorted(landing_rows):
        full, day = by.get(("project", scale)), by.get(("project_day_run", scale))
        if full is None:
            continue
        count, aggregate = by.get(("query_count", scale)), by.get(("query_aggregate", scale))
        ratio = f"{day.wall_s / full.wall_s:.2f}x" if day and day.returncode == 0 else ""
        lines.append(
            f"| {scale} | {full.wall_s:.1f} | {seconds(full.first_step_s)} "
            f"| {seconds(day.wall_s if day else None)} | {ratio} "
            f"| {seconds(day.first_step_s if day else None)} "
            f"| {f'{count.wall_s:.2f}' if count else ''} "
            f"| {f'{aggregate.wall_s:.2f}' if aggregate else ''} |"
        )
    return "\n".join(lines)


def growth(results: list[Measurement]) -> str:
    """How the project's wall time grows with the data, between consecutive scale factors
    (linear growth is the ratio of the scale factors)."""
    walls = {r.scale: r.wall_s for r in results if r.engine == "project" and r.returncode == 0}
    scales = sorted(walls)
    steps = [
        f"SF{b}/SF{a}: {walls[b] / walls[a]:.2f}x time for {b / a:g}x data"
        for a, b in itertools.pairwise(scales)
    ]
    return "project time growth: " + ("; ".join(steps) or "one scale factor only")


STEP_ROW = re.compile(r"^(\S+)\s+(asset|checks)\s+(\d+\.\d+)\s*$")
STEP_TOTALS = re.compile(r"^\d+ steps in .*$")


def step_report(log: Path) -> str:
    """The project's step totals and its slowest steps, from `stedi run`'s step table."""
    text = log.read_text(errors="replace").splitlines()
    totals = next((line for line in text if STEP_TOTALS.match(line)), "no step table")
    steps = [(m[1], float(m[3])) for line in text if (m := STEP_ROW.match(line))]
    slowest = sorted(steps, key=lambda step: -step[1])[:8]
    return f"{totals}; slowest: " + ", ".join(f"{name} {sec:.1f}s" for name, sec in slowest)


def medians(results: list[Measurement]) -> list[Measurement]:
    """One measurement per (engine, scale factor): the median run's wall and CPU time, the
    highest peak memory; a failed run shows as failed."""
    merged = []
    for key in dict.fromkeys((r.engine, r.scale) for r in results):
        runs = [r for r in results if (r.engine, r.scale) == key]
        typical = sorted(runs, key=lambda r: r.wall_s)[len(runs) // 2]
        merged.append(
            replace(
                typical,
                cpu_s=statistics.median(r.cpu_s for r in runs),
                peak_rss_mb=max(r.peak_rss_mb for r in runs),
                peak_jvm_rss_mb=max(r.peak_jvm_rss_mb for r in runs),
                returncode=next((r.returncode for r in runs if r.returncode != 0), 0),
                first_step_s=statistics.median(starts)
                if (starts := [r.first_step_s for r in runs if r.first_step_s is not None])
                else None,
            )
        )
    return merged


def count_mismatches(results: list[Measurement]) -> Iterator[str]:
    for scale in sorted({r.scale for r in results}):
        runs = [r for r in results if r.scale == scale and r.engine in ENGINES]
        for table in OUTPUT_TABLES:
            # Every run of every engine: a repetition that differs is a mismatch too.
            seen: dict[str, list[int | None]] = {}
            for r in runs:
                seen.setdefault(r.engine, []).append(r.counts.get(table))
            if len({count for counts in seen.values() for count in counts}) > 1:
                yield f"SF{scale} {table}: {seen}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale-factors", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument(
        "--work-dir",
        type=Path,
        # Outside the repository: SF50 is ~0.6 GB of JSON that must never be committed.
        default=Path(tempfile.gettempdir()) / "stedi-bench",
        help="scaled landing data (reused across invocations), lakes and logs",
    )
    parser.add_argument(
        "--driver-memory", default=os.environ.get("STEDI_SPARK_DRIVER_MEMORY", "2g")
    )
    parser.add_argument("--keep-lakes", action="store_true", help="keep each run's output")
    parser.add_argument(
        "--no-day-run",
        action="store_true",
        help="skip the project's new day through the sensor and the queries after a full run",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per engine and scale factor (median reported)"
    )
    parser.add_argument(
        "--project-src",
        type=Path,
        help="run the project from this source tree instead of the installed one "
        "(e.g. `git archive HEAD | tar -x -C DIR`, to benchmark a commit)",
    )
    args = parser.parse_args()

    reference = reference_data()
    work = args.work_dir.resolve()
    project_src = args.project_src.resolve() if args.project_src else None
    env = engine_env(args.driver_memory, project_src)
    results: list[Measurement] = []
    landing_rows: dict[int, int] = {}
    print(f"machine: {machine()}; driver memory {args.driver_memory}; work dir {work}")
    print(f"project: {project_src or 'installed (' + str(REPO) + ')'}")
    for scale in args.scale_factors:
        started = time.monotonic()
        landing = work / f"sf{scale}" / "landing"
        landing_rows[scale] = build_landing(reference, landing, scale)
        print(
            f"SF{scale}: {landing_rows[scale]:,} landing rows "
            f"({time.monotonic() - started:.0f}s to prepare)",
            flush=True,
        )
        # Engines alternate within each repetition, so a change in the machine's load affects
        # them alike.
        for repetition, engine in itertools.product(range(args.repeat), args.engines):
            lake = fresh_lake(landing, work / f"sf{scale}" / f"lake-{engine}")
            result = Measurement(engine, scale)
            log = work / f"sf{scale}" / f"{engine}-{repetition + 1}.log"
            measure(engine_command(engine, lake, project_src), env, log, result)
            # A failed run may have written no table at all.
            result.counts = table_counts(lake) if result.returncode == 0 else {}
            results.append(result)
            print(
                f"  {engine}: rc {result.returncode}, {result.wall_s:.1f}s wall, "
                f"{result.cpu_s:.1f}s CPU, peak {result.peak_rss_mb:,.0f} MiB, "
                f"java processes {result.java_main_classes}, load before "
                f"{result.load_before:.1f}, counts {result.counts}",
                flush=True,
            )
            if result.returncode != 0:
                print(f"  !!! {engine} failed, see {result.log}", flush=True)
            elif engine == "project" and not args.no_day_run:
                results.extend(
                    day_run_and_queries(reference, lake, scale, repetition, env, project_src)
                )
            if not args.keep_lakes:
                shutil.rmtree(lake, ignore_errors=True)

    print()
    merged = medians(results)
    print(report([r for r in merged if r.engine in ENGINES], landing_rows))
    print()
    print(project_report(merged, landing_rows))
    print(growth(merged))
    if args.repeat > 1:
        print(f"(median of {args.repeat} runs per engine and scale factor; peak memory: the max)")
    mismatches = list(count_mismatches(results))
    for r in results:
        if r.engine == "project" and Path(r.log).exists():
            print(f"\nproject SF{r.scale}: {step_report(Path(r.log))}")
    print()
    if mismatches:
        print("!!! ROW COUNT MISMATCH between engines !!!")
        for mismatch in mismatches:
            print(f"!!! {mismatch}")
    else:
        print("row counts: identical across engines at every scale factor")
    (work / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    failed = mismatches or any(r.returncode != 0 for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
