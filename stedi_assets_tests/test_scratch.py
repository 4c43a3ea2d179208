"""Spark's scratch on local disk: each process's own folder, and a killed process's removed."""

import os
import subprocess
import sys
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import SparkSession

from stedi_assets.storage.scratch import default_scratch_root, process_scratch_dir
from stedi_assets_tests.conftest import lake_settings


def _ended_process_id() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_folders_of_ended_processes_are_removed_and_running_ones_kept(tmp_path: Path) -> None:
    ended = tmp_path / str(_ended_process_id())
    (ended / "blockmgr-1").mkdir(parents=True)
    (ended / "blockmgr-1" / "rdd_3_0").write_text("a customer's readings")
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as running:
        try:
            other = tmp_path / str(running.pid)
            (other / "blockmgr-2").mkdir(parents=True)
            not_a_process = tmp_path / "notes"
            not_a_process.mkdir()

            mine = process_scratch_dir(tmp_path)

            assert mine == tmp_path / str(os.getpid()) and mine.is_dir()
            assert not ended.exists()
            assert (other / "blockmgr-2").is_dir()  # a run still going keeps its blocks
            assert not_a_process.is_dir()
        finally:
            running.kill()


def test_spark_keeps_its_blocks_in_the_process_folder(spark: SparkSession, tmp_path: Path) -> None:
    mine = default_scratch_root() / str(os.getpid())
    assert spark.conf.get("spark.local.dir") == str(mine)
    assert lake_settings(tmp_path).spark_config()["spark.local.dir"] == str(mine)
    kept = spark.range(1000).persist(StorageLevel.DISK_ONLY)
    try:
        kept.count()
        assert any(path.is_file() for path in mine.glob("blockmgr-*/**/*"))
    finally:
        kept.unpersist(blocking=True)
