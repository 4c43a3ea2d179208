"""Fetch the jars Spark needs beyond pyspark's own into a local cache, once.

- Apache Iceberg's Spark runtime (every table past landing is an Iceberg table), its AWS bundle
  (S3FileIO and the Glue catalog, with the AWS SDK v2 they need) and the SQLite JDBC driver (the
  embedded catalog of a local lake).
- The S3A connector, for reading landing JSON on an s3:// lake: pyspark 4.1.4 bundles Hadoop
  3.4.2's client but not ``hadoop-aws``. This fetches ``hadoop-aws`` of exactly that Hadoop
  version and the dependencies its POM declares that neither pyspark nor the Iceberg AWS bundle
  ships. The AWS SDK classes come from the Iceberg AWS bundle (SDK 2.54.17), so the two S3
  clients share one SDK; the SDK's transfer manager and Apache HTTP client are the two SDK
  modules S3A needs that the bundle lacks, fetched at the bundle's SDK version.

Everything lands in ``${STEDI_JAR_CACHE:-$HOME/.cache/stedi/jars}`` (about 135 MB).

Every jar is checked against the SHA-1 Maven Central publishes beside it and written
atomically (temporary file + rename), so the cache never holds a partial jar. A jar already in
the cache (with its verified ``.sha1`` beside it) is not downloaded again. Standard library
only: it runs before anything else is installed (``make install``).

Usage: python scripts/fetch_jars.py [--verify]
Environment: STEDI_JAR_CACHE (the cache folder), STEDI_MAVEN_REPO (a Maven Central mirror).
"""

import argparse
import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
# A mirror (or a file:// folder laid out like Maven, as the tests use) may stand in.
REPOSITORY = os.environ.get("STEDI_MAVEN_REPO", MAVEN_CENTRAL).rstrip("/")


@dataclass(frozen=True)
class Artifact:
    group: str
    name: str
    version: str

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}.jar"

    @property
    def url(self) -> str:
        return f"{REPOSITORY}/{self.group.replace('.', '/')}/{self.name}/{self.version}/" + (
            self.file_name
        )


# Keep in step with stedi_assets/storage/jars.py's JARS (a test checks that they agree).
ICEBERG = "1.12.0"
AWS_SDK = "2.54.17"  # the AWS SDK v2 inside iceberg-aws-bundle-1.12.0
ARTIFACTS: tuple[Artifact, ...] = (
    Artifact("org.apache.iceberg", "iceberg-spark-runtime-4.1_2.13", ICEBERG),
    Artifact("org.apache.iceberg", "iceberg-aws-bundle", ICEBERG),
    Artifact("org.xerial", "sqlite-jdbc", "3.54.1.0"),
    # S3A of pyspark 4.1.4's Hadoop (3.4.2), with what hadoop-aws-3.4.2.pom declares (managed
    # in hadoop-project-3.4.2.pom) that is not on the class path already.
    Artifact("org.apache.hadoop", "hadoop-aws", "3.4.2"),
    Artifact("software.amazon.s3.analyticsaccelerator", "analyticsaccelerator-s3", "1.2.1"),
    Artifact("org.wildfly.openssl", "wildfly-openssl", "2.1.4.Final"),
    Artifact("software.amazon.awssdk", "s3-transfer-manager", AWS_SDK),
    Artifact("software.amazon.awssdk", "apache-client", AWS_SDK),
)

CHUNK = 1 << 20
TIMEOUT_SECONDS = 60


def cache_dir() -> Path:
    """``$STEDI_JAR_CACHE``, else ``~/.cache/stedi/jars``."""
    configured = os.environ.get("STEDI_JAR_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache/stedi/jars"


class FetchError(Exception):
    """A jar could not be downloaded or did not match its published checksum."""


def _read_url(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise FetchError(f"cannot download {url}: {error}") from error


def published_sha1(artifact: Artifact) -> str:
    """The SHA-1 Maven Central publishes as ``<jar>.sha1`` (some files add the file name)."""
    text = _read_url(artifact.url + ".sha1").decode("ascii", "replace").strip()
    digest = text.split()[0].lower() if text else ""
    if len(digest) != 40 or any(c not in "0123456789abcdef" for c in digest):
        raise FetchError(f"{artifact.url}.sha1 does not hold a SHA-1: {text[:80]!r}")
    return digest


def sha1_of(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomically(target: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f".{target.name}.", delete=False
    ) as f:
        f.write(data)
    os.chmod(f.name, 0o644)
    os.replace(f.name, target)


def download(artifact: Artifact, directory: Path) -> Path:
    """Streams the jar to a temporary file in ``directory`` while hashing it, checks the hash,
    then renames it into place (and writes the verified ``.sha1`` beside it)."""
    expected = published_sha1(artifact)
    target = directory / artifact.file_name
    digest = hashlib.sha1()
    size = 0
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{artifact.file_name}.")
    try:
        with (
            os.fdopen(handle, "wb") as out,
            urllib.request.urlopen(artifact.url, timeout=TIMEOUT_SECONDS) as response,
        ):
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        if digest.hexdigest() != expected:
            raise FetchError(
                f"{artifact.url}: SHA-1 {digest.hexdigest()} does not match the published "
                f"{expected}; nothing was written"
            )
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the cache is shared
        os.replace(temporary, target)
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise FetchError(f"cannot download {artifact.url}: {error}") from error
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    _write_atomically(directory / f"{artifact.file_name}.sha1", (expected + "\n").encode())
    print(f"  downloaded {artifact.file_name} ({size / 1e6:.1f} MB, SHA-1 {expected})")
    return target


def is_cached(artifact: Artifact, directory: Path, verify: bool) -> bool:
    """A jar counts as cached when it and its verified ``.sha1`` are there (both are only
    ever renamed into place after a checksum match); ``verify`` re-hashes it."""
    jar = directory / artifact.file_name
    recorded = directory / f"{artifact.file_name}.sha1"
    if not (jar.is_file() and recorded.is_file()):
        return False
    if not verify:
        return True
    if sha1_of(jar) == recorded.read_text().strip():
        return True
    print(f"  {artifact.file_name} does not match its recorded SHA-1; fetching it again")
    return False


def fetch(directory: Path, verify: bool = False) -> int:
    """Makes sure every jar is in ``directory``; returns how many were downloaded."""
    directory.mkdir(parents=True, exist_ok=True)
    downloaded = 0
    for artifact in ARTIFACTS:
        if is_cached(artifact, directory, verify):
            continue
        print(f"  fetching {artifact.url}", flush=True)
        download(artifact, directory)
        downloaded += 1
    return downloaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--verify", action="store_true", help="re-hash cached jars against their SHA-1"
    )
    args = parser.parse_args(argv)
    directory = cache_dir()
    print(f"jars for Spark (Iceberg, S3A): cache {directory}")
    try:
        downloaded = fetch(directory, verify=args.verify)
    except FetchError as error:
        print(f"fetch_jars: {error}", file=sys.stderr)
        print(
            "fetch_jars: Spark needs these jars for every lake (Iceberg) and s3:// lakes (S3A); "
            "check the network/proxy to Maven Central and run this script again",
            file=sys.stderr,
        )
        return 1
    if downloaded:
        print(f"downloaded {downloaded} of {len(ARTIFACTS)} jars into {directory}")
    else:
        print(f"all {len(ARTIFACTS)} jars already cached in {directory}; nothing downloaded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
