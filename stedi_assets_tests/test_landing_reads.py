"""A run parses each landing file once; a file that changed since is parsed again."""

import json
from pathlib import Path

from dagster import build_resources
from pyspark.sql import SparkSession

from stedi_assets.settings import build_resources as lakehouse_resources
from stedi_assets.storage.landing_reads import release_parsed_landing
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
