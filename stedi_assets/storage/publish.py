"""Publishing a new version of a table, or of some of its partitions, all or nothing.

The new data is written completely to ``<lake>/_staging/...`` first; only then is it swapped in:
- on a local lake with Linux's atomic ``renameat2(RENAME_EXCHANGE)``, so a reader (or a run
  killed at any instant) sees the old folder or the new one, never a mix or nothing; swaps of
  one table are serialized with a file lock, so concurrent runs writing different days of it
  do not race;
- on an object store with Hadoop renames (S3A copies, then deletes): no atomic folder swap
  exists there, so a reader during the swap may see a partial folder (see the README).
Superseded versions and staging folders are deleted afterwards: the table's folder holds the
current version only.
"""

import ctypes
import ctypes.util
import fcntl
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from pyspark.sql import SparkSession

from stedi_assets.storage.filesystem import hadoop_path, is_local
from stedi_assets.storage.layout import TableSpec

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
# Below the lake root: new versions being written, and old ones being deleted.
STAGING = "_staging"
RETIRED = "_retired"


class Publisher:
    """Swaps ``staging/<relative>`` over ``target/<relative>`` (Hadoop FileSystem renames)."""

    def __init__(self, spark: SparkSession, lake: str, spec: TableSpec) -> None:
        token = uuid.uuid4().hex
        root = lake.rstrip("/")
        self.lake = root
        self.spec = spec
        self.target = spec.location(lake)
        self.staging = f"{root}/{STAGING}/{spec.relative_path}/{token}/"
        self.retired = f"{root}/{RETIRED}/{spec.relative_path}/{token}/"
        self._spark = spark
        self.fs, _ = hadoop_path(spark, self.target)

    def _path(self, uri: str):  # -> JVM Path
        return hadoop_path(self._spark, uri)[1]

    @contextmanager
    def swapping(self) -> Iterator[None]:
        yield

    def children(self, uri: str) -> set[str]:
        path = self._path(uri)
        if not self.fs.exists(path):
            return set()
        return {status.getPath().getName() for status in self.fs.listStatus(path)}

    def replace(self, relative: str = "") -> None:
        new, current, old = (
            self._path(base + relative) for base in (self.staging, self.target, self.retired)
        )
        if self.fs.exists(current):
            self.fs.mkdirs(old.getParent())
            if not self.fs.rename(current, old):
                raise OSError(f"could not move the old {self.target}{relative} aside")
        if self.fs.exists(new):
            self.fs.mkdirs(current.getParent())
            if not self.fs.rename(new, current):
                raise OSError(f"could not move the new {self.target}{relative} into place")

    def clean_up(self) -> None:
        for leftover in (self.staging, self.retired):
            self.fs.delete(self._path(leftover), True)


class LocalPublisher(Publisher):
    """Atomic folder exchange on a local file system, one swapper per table at a time."""

    def _local(self, uri: str) -> Path:
        return Path(uri.removeprefix("file://"))

    @contextmanager
    def swapping(self) -> Iterator[None]:
        lock = self._local(self.lake) / "_locks" / f"{self.spec.entity}-{self.spec.zone}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with lock.open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def children(self, uri: str) -> set[str]:
        folder = self._local(uri)
        return {p.name for p in folder.iterdir()} if folder.is_dir() else set()

    def replace(self, relative: str = "") -> None:
        new, current, old = (
            self._local(base + relative) for base in (self.staging, self.target, self.retired)
        )
        if new.exists() and current.exists():
            _exchange(new, current)  # the old version is now in staging, deleted by clean_up
        elif new.exists():
            current.parent.mkdir(parents=True, exist_ok=True)
            os.rename(new, current)
        elif current.exists():
            old.parent.mkdir(parents=True, exist_ok=True)
            os.rename(current, old)  # this partition has no rows any more

    def clean_up(self) -> None:
        for leftover in (self.staging, self.retired):
            shutil.rmtree(self._local(leftover), ignore_errors=True)


def _exchange(a: Path, b: Path) -> None:
    """Atomically swaps two paths (Linux renameat2 with RENAME_EXCHANGE)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    result = libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"atomic exchange of {a} and {b} failed: {os.strerror(errno)}")


_held: dict[Path, tuple[IO[str], int]] = {}  # lake lock file -> (open file, holders here)
_held_guard = threading.Lock()


def acquire_lake(lake: str, log: Any) -> None:
    """Takes the lake's run lock, waiting while another process holds it. Re-entrant within
    a process (Dagster may set up a resource more than once per run). The OS releases the lock
    when the process dies, so a killed run never blocks the next."""
    path = Path(lake.removeprefix("file://")) / "_locks" / "lake.lock"
    with _held_guard:
        if path in _held:
            handle, holders = _held[path]
            _held[path] = (handle, holders + 1)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info(f"another run is using the lake {lake}; waiting for it to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        _held[path] = (handle, 1)
        _remove_leftovers(path.parent.parent, log)


def _remove_leftovers(lake: Path, log: Any) -> None:
    """Deletes what killed runs left in staging: with the lake held, no run is writing there.
    (Never a table's data: a table is only ever its own folder, swapped in whole.)"""
    for area in (STAGING, RETIRED):
        leftovers = lake / area
        if leftovers.is_dir() and any(leftovers.iterdir()):
            log.info(f"removing {leftovers}, left by an interrupted run")
            shutil.rmtree(leftovers, ignore_errors=True)


def release_lake(lake: str) -> None:
    path = Path(lake.removeprefix("file://")) / "_locks" / "lake.lock"
    with _held_guard:
        handle, holders = _held[path]
        if holders > 1:
            _held[path] = (handle, holders - 1)
            return
        del _held[path]
        handle.close()  # closing the file releases the lock


def publisher_for(spark: SparkSession, lake: str, spec: TableSpec) -> Publisher:
    return LocalPublisher(spark, lake, spec) if is_local(lake) else Publisher(spark, lake, spec)
