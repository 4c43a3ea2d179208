"""Paths in the lake as Spark and Hadoop see them (local folders and S3 alike)."""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `stedi query` on DuckDB lists files here without loading pyspark
    from pyspark.sql import SparkSession


def spark_uri(uri: str) -> str:
    """Open-source Spark reaches S3 through the S3A connector, so ``s3://`` becomes ``s3a://``."""
    return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri


def is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def hadoop_path(spark: "SparkSession", uri: str) -> tuple[Any, Any]:
    """The Hadoop ``FileSystem`` and ``Path`` (JVM objects) of ``uri``."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(spark_uri(uri))
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def path_exists(spark: "SparkSession", uri: str) -> bool:
    fs, path = hadoop_path(spark, uri)
    return bool(fs.exists(path))


@dataclass(frozen=True)
class LocalListing:
    """The regular files below a local folder; the links skipped and the entries that cannot
    be read, each with the reason."""

    files: list[Path]
    links: list[tuple[str, str]]  # (path, reason): loops and dangling links, skipped
    unreadable: list[tuple[str, str]]  # (path, reason): not regular files, unlistable folders


def walk_local(folder: Path) -> LocalListing:
    """Every regular file below ``folder``, each once. Symbolic links are followed (a landing
    folder may be a link), but every directory is listed once (by device and inode), so a link
    that loops is reported, not followed again; a dangling link (an editor's lock file) is
    reported and skipped."""
    files: list[Path] = []
    links: list[tuple[str, str]] = []
    unreadable: list[tuple[str, str]] = []
    listed: set[tuple[int, int]] = set()
    pending = [folder]
    while pending:
        directory = pending.pop()
        try:
            status = directory.stat()
        except OSError as error:
            unreadable.append((str(directory), f"cannot be listed: {error.strerror}"))
            continue
        if (status.st_dev, status.st_ino) in listed:
            links.append((str(directory), "a link back to a folder already listed (a loop)"))
            continue
        listed.add((status.st_dev, status.st_ino))
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                path = Path(entry.path)
                try:
                    if entry.is_dir(follow_symlinks=True):
                        pending.append(path)
                    elif entry.is_file(follow_symlinks=True):
                        files.append(path)
                    elif entry.is_symlink():
                        links.append((str(path), "a link to nothing (dangling)"))
                    else:
                        unreadable.append((str(path), "not a regular file (a pipe, a socket, …)"))
                except OSError as error:  # ELOOP: a link to itself
                    links.append((str(path), f"a link that cannot be followed: {error.strerror}"))
    return LocalListing(sorted(files), links, unreadable)
