"""A run parses each landing file once; a file that changed since is parsed again."""

import json
import os
from pathlib import Path

from dagster import build_resources
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from stedi_assets.assets.landing import rejected_rows
from stedi_assets.query_duckdb import query_local
from stedi_assets.settings import build_resources as lakehouse_resources
from stedi_assets.storage.landing_files import LandingFiles
from stedi_assets.storage.landing_reads import release_parsed_landing
from stedi_assets_tests.aws_fixtures import require_s3a_jars
from stedi_assets_tests.conftest import lake_settings


def _write(path: Path, *timestamps: int) -> None:
    lines = (
        json.dumps({"user": "a@test.com", "timestamp": t, "x": 1.0, "y": 0, "z": 0})
        for t in timestamps
    )
    path.write_text("\n".join(lines) + "\n")


def test_landing_is_parsed_once_until_a_file_changes_or_the_run_ends(
    spark: SparkSession, tmp_path: Path
) -> None:
    landing = tmp_path / "accelerometer" / "landing"
    landing.mkdir(parents=True)
    upload = landing / "phone.json"
    _write(upload, 1, 2)
    lake = lakehouse_resources(lake_settings(tmp_path), writes=False)["lake"]
    with build_resources({"lake": lake}) as resources:
        first = resources.lake.read_landing("accelerometer_landing")
        assert first.count() == 2
        # The same files, unchanged: the rows already parsed (the same DataFrame, kept).
        assert resources.lake.read_landing("accelerometer_landing") is first
        assert first.is_cached

        _write(upload, 1, 2, 3)  # the device appended a reading
        changed = resources.lake.read_landing("accelerometer_landing")
        assert changed is not first and changed.count() == 3

        (landing / "second.json").write_text("")  # a new file is a new set of files
        assert resources.lake.read_landing("accelerometer_landing") is not changed

        release_parsed_landing()  # what the end of a run does
        assert not changed.is_cached
        assert resources.lake.read_landing("accelerometer_landing").count() == 3
    release_parsed_landing()


# Names a device or a person may give a file: each is read as named, never as a pattern.
ODD_NAMES = (
    "upload 2022-06-18T10:00:00.json",
    "50% done.json",
    "Ünïcödé-日本.json",
    "[draft].json",
    "{a,b}.json",
    "star*.json",
    "what?.json",
)


def test_files_with_any_name_are_read_once_each_and_links_never_twice(
    spark: SparkSession, tmp_path: Path
) -> None:
    landing = tmp_path / "accelerometer" / "landing"
    day = landing / "2022-06-18"
    day.mkdir(parents=True)
    for i, name in enumerate(ODD_NAMES):
        _write(day / name, 1_655_510_400_000 + i)
    _write(day / "_hidden.json", 1)
    _write(day / ".partial.json", 2)
    (day / "loop").symlink_to(landing)  # a link back up: a loop
    (day / ".#lock.json").symlink_to(day / "gone.json")  # an editor's dangling lock file
    (day / "dangling.json").symlink_to(day / "nowhere.json")
    os.mkfifo(day / "pipe.json")
    _write(day / "at 10:00 [2].json", 3)  # ':' and a glob character: Hadoop cannot read it
    lake = lakehouse_resources(lake_settings(tmp_path), writes=False)["lake"]
    with build_resources({"lake": lake}) as resources:
        landing = resources.lake.read_landing("accelerometer_landing")
        lines = landing.where(F.col("_file_problem").isNull())
        files = {r["_source_file"].rsplit("/", 1)[-1] for r in lines.collect()}  # 7 rows
        assert lines.count() == len(ODD_NAMES) == len(files)
        assert {r["_folder_day"] for r in landing.collect()} == {"2022-06-18"}
        skipped = dict(resources.lake.skipped_landing_files("accelerometer_landing"))
        # What cannot be read is quarantined as a file, with the reason; hidden files and
        # links are skipped (and reported).
        quarantined = rejected_rows(landing, "accelerometer_landing").collect()
    release_parsed_landing()
    reasons = {Path(path).name: reason for path, reason in skipped.items()}
    assert "loop" in reasons["loop"]
    assert "dangling" in reasons["dangling.json"]
    assert "not a regular file" in reasons["pipe.json"]
    assert "hidden" in reasons["_hidden.json"] and "hidden" in reasons[".partial.json"]
    assert sorted((Path(r.source_file).name, r.reason) for r in quarantined) == [
        (
            "at 10:00 [2].json",
            "file not read: a name with both ':' and a glob character ([, {, *, ?, \\) "
            "Hadoop cannot read",
        ),
        ("pipe.json", "file not read: not a regular file (a pipe, a socket, …)"),
    ]
    # The sensor lists the same files (and the one to quarantine), once each, and does not
    # crash on the links.
    listed = LandingFiles(root=str(tmp_path)).files()
    names = sorted(f.key.rsplit("/", 1)[-1] for f in listed)
    assert names == sorted([*ODD_NAMES, "at 10:00 [2].json"])
    # `stedi query` on DuckDB skips the same hidden files (and reads the one Hadoop cannot).
    count = "SELECT COUNT(*) FROM accelerometer_landing"
    catalog_file = str(tmp_path / "_catalog" / "catalog.sqlite")
    assert query_local(str(tmp_path), catalog_file, "stedi", count, 1).rows == [(len(names),)]


def test_on_s3_files_of_any_name_are_read_and_keys_hadoop_cannot_address_are_quarantined(
    spark: SparkSession, moto_endpoint: str
) -> None:
    """S3 keys are any string: ``//`` (an empty folder name), which a Hadoop path collapses into
    one ``/``, names an object Hadoop cannot address; it is quarantined as a file."""
    require_s3a_jars()
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="odd-names")
    prefix = "lake/accelerometer/landing/2022-06-18/"
    line = {"user": "a@test.com", "timestamp": 1_655_510_400_000, "x": 1.0, "y": 0, "z": 0}
    for name in ODD_NAMES:
        s3.put_object(Bucket="odd-names", Key=prefix + name, Body=json.dumps(line).encode())
    s3.put_object(Bucket="odd-names", Key=prefix + "/double.json", Body=json.dumps(line).encode())
    s3.put_object(
        Bucket="odd-names", Key="lake/accelerometer/landing//x.json", Body=json.dumps(line).encode()
    )
    settings = lake_settings("s3://odd-names/lake")
    lake = lakehouse_resources(settings, writes=False)["lake"]
    with build_resources({"lake": lake}) as resources:
        landing = resources.lake.read_landing("accelerometer_landing")
        lines = landing.where(F.col("_file_problem").isNull())
        files = {r["_source_file"].rsplit("/", 1)[-1] for r in lines.collect()}  # 7 rows
        quarantined = rejected_rows(landing, "accelerometer_landing").collect()
    release_parsed_landing()
    assert lines.count() == len(ODD_NAMES) == len(files)
    assert sorted(r.source_file.removeprefix("s3a://odd-names/") for r in quarantined) == [
        "lake/accelerometer/landing//x.json",
        prefix + "/double.json",
    ]
    assert all("//" in r.reason for r in quarantined)
