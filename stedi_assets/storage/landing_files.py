"""Listing landing files (local folder or S3) for the sensor, without Spark or reading them.

A landing file's day is the ``YYYY-MM-DD`` (or ``day=YYYY-MM-DD``) folder it sits in, the
convention uploads follow; a file outside any day folder may hold readings of any day.
"""

from dataclasses import dataclass
from pathlib import Path

from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from dagster_aws.s3.sensor import get_objects

from stedi_assets.storage.filesystem import walk_local
from stedi_assets.storage.layout import LANDING_TABLES, is_hidden, landing_day
from stedi_assets.storage.s3 import split_s3_uri


@dataclass(frozen=True, order=True)
class LandingFile:
    modified_ms: int  # first, so files sort by modification time
    key: str  # the path below the lake root, e.g. "accelerometer/landing/2022-06-18/a.json"
    size: int

    @property
    def entity(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def day(self) -> str | None:
        """The day folder the file sits in, if any."""
        return landing_day(self.key.split("/", 2)[2])

    @property
    def version(self) -> str:
        """Identifies this content of this file: a changed file is a new version."""
        return f"{self.key}@{self.modified_ms}:{self.size}"


class LandingFiles(ConfigurableResource):
    """The files of the three landing folders of the lake at ``root``."""

    root: str
    s3: S3Resource | None = None  # set for an s3:// lake

    def files(self) -> list[LandingFile]:
        """Every landing file, oldest first."""
        files = self._list_s3() if self.s3 else self._list_local()
        return sorted(f for f in files if not is_hidden(f.key))

    def _list_local(self) -> list[LandingFile]:
        root = Path(self.root)
        found = []
        for table in LANDING_TABLES:
            folder = root / table.relative_path
            if not folder.is_dir():
                continue
            # Links are followed, each folder once: a loop or a dangling link is skipped (the
            # run's landing read reports them in the landing asset's metadata).
            for path in walk_local(folder).files:
                stat = path.stat()
                key = f"{table.relative_path}/{path.relative_to(folder).as_posix()}"
                found.append(LandingFile(stat.st_mtime_ns // 1_000_000, key, stat.st_size))
        return found

    def _list_s3(self) -> list[LandingFile]:
        bucket, prefix = split_s3_uri(self.root)
        prefix = f"{prefix}/" if prefix else ""
        client = self.s3.get_client()
        found = []
        for table in LANDING_TABLES:
            # get_objects pages through the listing (1,000 keys a page). The sensor needs every
            # file's day anyway, and its cursor, not a time filter, decides what is new.
            for obj in get_objects(bucket, f"{prefix}{table.relative_path}/", client=client):
                key = obj["Key"].removeprefix(prefix)
                modified_ms = int(obj["LastModified"].timestamp() * 1000)
                found.append(LandingFile(modified_ms, key, int(obj["Size"])))
        return found
