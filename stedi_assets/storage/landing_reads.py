"""Reading landing JSON with Spark: the schema of its DDL in ``sql/``, the files of the days
asked for, each file parsed once per run."""

import re
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple

from dagster_aws.s3.sensor import get_objects
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from stedi_assets.storage.ddl import landing_ddl
from stedi_assets.storage.filesystem import (
    hadoop_path,
    is_local,
    path_exists,
    spark_uri,
    walk_local,
)
from stedi_assets.storage.layout import (
    DAY_FOLDER_PATTERN,
    TableSpec,
    is_hidden,
    landing_day,
    near_days,
)
from stedi_assets.storage.s3 import s3_resource, split_s3_uri

# Spark puts a line it cannot parse against the DDL schema here (PERMISSIVE mode).
CORRUPT_RECORD = "_corrupt_record"
# The landing file a row was read from, for quarantine and messages.
SOURCE_FILE = "_source_file"
# The day folder of that file (``.../2022-06-19/...``), null when it is in none.
FOLDER_DAY = "_folder_day"
# Columns read_landing adds to the DDL's: where a row came from and whether it parsed.
# Why a listed entry could not be read at all (a link that loops, …): one row per such file.
FILE_PROBLEM = "_file_problem"
LANDING_EXTRA_COLUMNS = (CORRUPT_RECORD, SOURCE_FILE, FOLDER_DAY, FILE_PROBLEM)


def read_landing(
    spark: SparkSession, lake: str, spec: TableSpec, days: tuple[str, str] | None = None
) -> DataFrame:
    """The JSON-lines files below the table's landing folder, at any depth, read with the
    schema of its DDL in ``sql/``. Lines that do not fit the schema keep their raw text in
    ``_corrupt_record`` so that a check can count them.

    With ``days=(first, last)`` only the files that may hold readings of those days are read:
    files in day folders from the day before ``first`` to the day after ``last``, and files in
    no day folder. A day's run does not rescan the other days' files.

    JSON is parsed once per run: the parsed rows are kept (as Spark blocks on local disk)
    for every later read of the same files, unchanged, until
    ``release_parsed_landing``. A run's day range, its quarantine and its trusted tables all
    read the same landing files, and parsing JSON is the costliest step of the whole graph."""
    location = spec.location(lake)
    if not path_exists(spark, location):
        raise FileNotFoundError(
            f"no landing data for {spec.name}: {location} does not exist "
            f"(is the lake root {lake!r} right?)"
        )
    listing = list_landing(spark, location, near_days(*days) if days else None)
    files = listing.files
    # A file rewritten in place has another size or time: it is parsed again.
    key = (spark.sparkContext.applicationId, spec.name, files, listing.problems)
    if key in _parsed_landing:
        return _parsed_landing[key]
    _forget_older_versions(key)
    schema = landing_ddl(spec.name).spark_schema().add(CORRUPT_RECORD, "string")
    # Entries that cannot be read become one row each: no fields, the file and the reason.
    problems = spark.createDataFrame(
        [(p.path, p.day, p.reason) for p in listing.problems],
        f"{SOURCE_FILE} string, {FOLDER_DAY} string, {FILE_PROBLEM} string",
    ).select(*[F.lit(None).cast(f.dataType).alias(f.name) for f in schema], "*")
    if not files:
        return problems
    # Once per row here, not in every rule that needs it (a regex costs as much as a scan);
    # not at all when no file is in a day folder.
    in_day_folders = any(file.day is not None for file in files)
    folder_day = _folder_day(F.col(SOURCE_FILE)) if in_day_folders else F.lit(None)
    # The files as listed, not the folder: what was listed is exactly what is parsed and kept.
    parsed = (
        spark.read.schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
        # Spark reads each path as a glob pattern: escaped, a name holding [, {, * or ? means
        # itself.
        .json([_literal(file.path) for file in files])
        .withColumn(SOURCE_FILE, F.col("_metadata.file_path"))
        .withColumn(FOLDER_DAY, folder_day.cast("string"))
        .withColumn(FILE_PROBLEM, F.lit(None).cast("string"))
    )
    if listing.problems:
        parsed = parsed.unionByName(problems)
    # On local disk, not in the heap: at SF500 the parsed rows are many times the heap, and
    # cached blocks held in it left too little room for the tasks (OutOfMemoryError); the
    # operating system's page cache keeps recently written blocks in memory anyway.
    parsed = parsed.persist(StorageLevel.DISK_ONLY)
    _parsed_landing[key] = parsed
    return parsed


# Characters Hadoop's glob patterns give a meaning to.
_GLOB = re.compile(r"([\\\[\]{}*?])")


def _literal(path: str) -> str:
    """``path`` as a glob pattern that matches exactly that path."""
    return _GLOB.sub(r"\\\1", path)


def _unreadable_name(name: str) -> str | None:
    """Why Hadoop cannot read a file of this name, if it cannot: a glob pattern's parts are
    parsed as paths, and a ':' in such a part reads as a URI scheme."""
    if ":" in name and _GLOB.search(name):
        return "a name with both ':' and a glob character ([, {, *, ?, \\) Hadoop cannot read"
    return None


def _folder_day(path: Column) -> Column:
    day = F.regexp_extract(path, f"/landing/(?:.*/)?{DAY_FOLDER_PATTERN}/", 1)
    return F.nullif(day, F.lit(""))


class LandingFile(NamedTuple):
    path: str
    size: int
    modified: int  # epoch ms
    day: str | None  # of its day folder


# (Spark application, landing table, files) -> parsed rows.
_parsed_landing: dict[tuple[str, str, tuple[LandingFile, ...]], DataFrame] = {}


def _forget_older_versions(key: tuple[str, str, tuple[LandingFile, ...]]) -> None:
    """Unpersists what was kept of the same files before they changed. Spark matches cached
    data by query plan, which names the files but not their sizes or times: left cached, the
    old rows would be served for the new read."""
    paths = [file.path for file in key[2]]
    for kept in [k for k in _parsed_landing if k[:2] == key[:2]]:
        if [file.path for file in kept[2]] == paths:
            _parsed_landing.pop(kept).unpersist()


def release_parsed_landing() -> None:
    """Frees the parsed landing rows kept by ``read_landing`` (at the end of a run)."""
    while _parsed_landing:
        _, parsed = _parsed_landing.popitem()
        with suppress(Exception):  # a stopped session has nothing left to free
            parsed.unpersist()


class FileProblem(NamedTuple):
    path: str
    day: str | None  # of its day folder
    reason: str


class LandingListing(NamedTuple):
    files: tuple[LandingFile, ...]  # the data files, sorted
    hidden: tuple[str, ...]  # names starting with . or _: not data (Spark's rule), skipped
    links: tuple[tuple[str, str], ...]  # (path, reason): loops and dangling links, skipped
    problems: tuple[FileProblem, ...]  # entries that cannot be read: quarantined as files


def list_landing(
    spark: SparkSession, location: str, days: tuple[str, str] | None = None
) -> LandingListing:
    """The data files below ``location`` (all, or those of day folders ``first..last`` and
    of no day folder); the hidden files skipped (names starting with ``.`` or ``_``: Spark's
    convention, not data); links that loop or lead nowhere, skipped; and the entries that
    cannot be read (not a regular file, a folder that cannot be listed), with the reason."""
    entries: list[tuple[str, str, int, int]] = []  # (path URI, path below, size, modified)
    unreadable: list[tuple[str, str, str]] = []  # (path, path below, reason)
    links: list[tuple[str, str]] = []
    if is_local(location):
        # Landing files have no ".<name>.crc" checksum companions (devices write them), and
        # Hadoop's local file system would build that companion's name for every file it
        # opens, which a ':' in the name breaks. This process's local file system reads
        # without looking for it (one cached instance; Spark's local executors share it).
        hadoop_path(spark, location)[0].setVerifyChecksum(False)
        root = Path(location.removeprefix("file://"))
        listing = walk_local(root)
        links = [(f"file://{path}", reason) for path, reason in listing.links]
        for path, reason in listing.unreadable:
            below = Path(path).relative_to(root).as_posix() if path.startswith(str(root)) else ""
            unreadable.append((f"file://{path}", below, reason))
        for path in listing.files:
            status = path.stat()
            below = path.relative_to(root).as_posix()
            modified = status.st_mtime_ns // 1_000_000
            # Not percent-encoded: Hadoop reads the path as written ('%' in a name is a '%').
            entries.append((f"file://{path.absolute()}", below, status.st_size, modified))
    else:
        # Listed by key, not through Hadoop: a Hadoop path collapses "//" (a key with an empty
        # folder name, which S3 allows), so such an object would be listed under a name that
        # does not exist and fail the read. Those keys are quarantined as files instead.
        bucket, prefix = split_s3_uri(location)
        prefix = prefix.rstrip("/") + "/"
        client = s3_resource().get_client()
        for obj in get_objects(bucket, prefix, client=client):  # pages of 1,000 keys
            key, below = obj["Key"], obj["Key"].removeprefix(prefix)
            uri = spark_uri(f"s3://{bucket}/{key}")
            if "//" in f"/{below}" or below.endswith("/"):
                why = "an S3 key with an empty folder name (//) that Hadoop paths cannot address"
                unreadable.append((uri, below, why))
                continue
            modified = int(obj["LastModified"].timestamp() * 1000)
            entries.append((uri, below, int(obj["Size"]), modified))

    def wanted(below: str) -> bool:
        day = landing_day(below)
        return days is None or day is None or days[0] <= day <= days[1]

    files, hidden = [], []
    for uri, below, size, modified in entries:
        if is_hidden(below):
            hidden.append(uri)
        elif (why := _unreadable_name(below.rsplit("/", 1)[-1])) is not None:
            unreadable.append((uri, below, why))
        elif wanted(below):
            files.append(LandingFile(uri, size, modified, landing_day(below)))
    problems = [
        FileProblem(uri, landing_day(below), reason)
        for uri, below, reason in unreadable
        if wanted(below)
    ]
    return LandingListing(
        tuple(sorted(files)), tuple(sorted(hidden)), tuple(links), tuple(problems)
    )
