"""What a run does before its first step: the driver's class archive, and the days of an
all-days run taken from the day folders without reading a file."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stedi_assets import runner
from stedi_assets.storage import class_archive
from stedi_assets_tests.conftest import lake_settings

CLASS_PATH = "/jars/a.jar:/jars/b.jar"


def test_runs_map_the_class_archive_only_once_it_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEDI_JAR_CACHE", str(tmp_path))
    monkeypatch.delenv("STEDI_CLASS_ARCHIVE", raising=False)
    assert class_archive.archive_config(CLASS_PATH) == {}  # not built yet: Spark as always
    archive = class_archive.archive_path(CLASS_PATH)
    assert archive is not None and archive.parent == tmp_path
    archive.write_bytes(b"archive")
    option = class_archive.archive_config(CLASS_PATH)[class_archive.DRIVER_JAVA_OPTIONS]
    assert f"-XX:SharedArchiveFile={archive}" in option
    # Another class path (a jar added or upgraded) is another archive, not this one.
    assert class_archive.archive_path(CLASS_PATH + ":/jars/c.jar") != archive
    monkeypatch.setenv("STEDI_CLASS_ARCHIVE", "off")
    assert class_archive.archive_config(CLASS_PATH) == {}


def test_an_install_replaces_only_its_own_environment_s_archives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkouts share the jar cache: an install in one must not delete another's archive."""
    monkeypatch.setenv("STEDI_JAR_CACHE", str(tmp_path))
    current = class_archive.archive_path(CLASS_PATH)
    replaced = class_archive.archive_path(CLASS_PATH + ":/jars/old.jar")
    assert current is not None and replaced is not None
    monkeypatch.setattr(sys, "prefix", "/another/venv")
    elsewhere = class_archive.archive_path(CLASS_PATH)
    monkeypatch.undo()
    monkeypatch.setenv("STEDI_JAR_CACHE", str(tmp_path))
    assert elsewhere is not None and elsewhere not in (current, replaced)
    for archive in (current, replaced, elsewhere):
        archive.write_bytes(b"archive")

    class_archive.remove_replaced_archives(current)

    assert current.exists() and elsewhere.exists()
    assert not replaced.exists()


def test_spark_starts_even_when_the_class_archive_is_damaged(tmp_path: Path) -> None:
    """The JVM checks the archive it maps and goes on without a bad one: an archive can make
    a run faster, never stop it."""
    jar_cache = tmp_path / "jars"
    jar_cache.mkdir()
    for jar in class_archive.jar_cache().glob("*.jar"):
        (jar_cache / jar.name).symlink_to(jar)
    program = (
        "import sys\n"
        "from pyspark.sql import SparkSession\n"
        "from stedi_assets.settings import prepare_spark_environment\n"
        "from stedi_assets_tests.conftest import lake_settings\n"
        "from stedi_assets.storage.class_archive import archive_path, DRIVER_JAVA_OPTIONS\n"
        "prepare_spark_environment()\n"
        "config = lake_settings(sys.argv[1]).spark_config()\n"
        "archive = archive_path(config['spark.driver.extraClassPath'])\n"
        "archive.write_bytes(b'not an archive' * 1000)\n"
        "config = lake_settings(sys.argv[1]).spark_config()\n"
        "assert 'SharedArchiveFile' in config[DRIVER_JAVA_OPTIONS]\n"
        "builder = SparkSession.builder\n"
        "for key, value in config.items():\n"
        "    builder = builder.config(key, value)\n"
        "print('rows', builder.getOrCreate().range(3).count())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, str(tmp_path / "lake")],
        env={**os.environ, "STEDI_JAR_CACHE": str(jar_cache)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rows 3" in done.stdout


def _lake_with(tmp_path: Path, *files: str) -> Path:
    lake = tmp_path / "lake"
    for relative in files:
        path = lake / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}\n")
    return lake


def test_an_all_days_run_takes_its_days_from_the_day_folders_without_reading_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_scan(settings: object) -> None:
        raise AssertionError("the landing files were read to find their days")

    monkeypatch.setattr(runner, "days_in_landing", no_scan)
    lake = _lake_with(
        tmp_path,
        "customer/landing/c.json",  # customers carry no readings: no day needed
        "accelerometer/landing/2022-06-20/a.json",
        "step_trainer/landing/2022-06-22/s.json",
    )
    settings = lake_settings(lake)
    files = runner.landing_files(settings).files()
    folders = runner.days_landing_may_hold(f.day for f in files if f.day)
    # A day either side of the folders, as the sensor's all-days runs.
    assert runner._days_of_readings(settings, files, folders) == ("2022-06-19", "2022-06-23")


def test_a_reading_file_outside_any_day_folder_makes_the_run_read_the_readings_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanned = ("2022-06-18", "2022-07-01")
    monkeypatch.setattr(runner, "days_in_landing", lambda settings: scanned)
    lake = _lake_with(
        tmp_path,
        "accelerometer/landing/2022-06-20/a.json",
        "step_trainer/landing/s.json",  # no day folder: may hold any day
    )
    settings = lake_settings(lake)
    files = runner.landing_files(settings).files()
    folders = runner.days_landing_may_hold(f.day for f in files if f.day)
    assert runner._days_of_readings(settings, files, folders) == scanned
