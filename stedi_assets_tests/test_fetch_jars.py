"""scripts/fetch_jars.py against a Maven-shaped folder (file://), so no network is used."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from stedi_assets.storage import jars as jars_module
from stedi_assets_tests.conftest import REPO

SCRIPT = REPO / "scripts" / "fetch_jars.py"


def _artifacts() -> list[tuple[str, str, str]]:
    """(group, name, version) of every jar the script fetches, read from the script itself."""
    listing = subprocess.run(
        [
            sys.executable,
            "-c",
            "import runpy, sys; m = runpy.run_path(sys.argv[1]); "
            "print('\\n'.join(f'{a.group} {a.name} {a.version}' for a in m['ARTIFACTS']))",
            str(SCRIPT),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [tuple(line.split()) for line in listing.stdout.splitlines()]  # type: ignore[misc]


def _pyspark_jars() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def _fake_repository(root: Path, corrupt: str | None = None) -> Path:
    """A Maven layout with a small jar and its .sha1 for every artifact."""
    for group, name, version in _artifacts():
        folder = root / group.replace(".", "/") / name / version
        folder.mkdir(parents=True)
        jar = folder / f"{name}-{version}.jar"
        jar.write_bytes(f"{group}:{name}:{version}".encode())
        digest = hashlib.sha1(jar.read_bytes()).hexdigest()
        if name == corrupt:
            digest = "0" * 40
        (folder / f"{jar.name}.sha1").write_text(f"{digest}  {jar.name}\n")
    return root


def _fetch(cache: Path, repository: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEDI_JAR_CACHE": str(cache), "STEDI_MAVEN_REPO": repository}
    return subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, check=False
    )


def test_the_script_fetches_the_jars_spark_is_given() -> None:
    names = tuple(f"{name}-{version}.jar" for _, name, version in _artifacts())
    assert names == jars_module.JARS
    # hadoop-aws must be the Hadoop that pyspark ships; Iceberg's runtime the Spark's.
    hadoop = sorted(p.name for p in _pyspark_jars().glob("hadoop-client-api-*.jar"))
    assert hadoop == ["hadoop-client-api-3.4.2.jar"]
    assert ("org.apache.hadoop", "hadoop-aws", "3.4.2") in _artifacts()
    import pyspark

    assert pyspark.__version__.startswith("4.1.")
    assert ("org.apache.iceberg", "iceberg-spark-runtime-4.1_2.13", "1.12.0") in _artifacts()


def test_fetches_verifies_and_caches_then_downloads_nothing(tmp_path: Path) -> None:
    repository = _fake_repository(tmp_path / "maven").as_uri()
    cache = tmp_path / "cache"

    first = _fetch(cache, repository)
    assert first.returncode == 0, first.stderr
    assert f"downloaded {len(jars_module.JARS)} of" in first.stdout
    assert sorted(p.name for p in cache.glob("*.jar")) == sorted(jars_module.JARS)
    assert not list(cache.glob(".*"))  # no temporary files left behind

    second = _fetch(cache, repository)
    assert second.returncode == 0, second.stderr
    assert "nothing downloaded" in second.stdout
    assert "fetching" not in second.stdout


def test_a_checksum_mismatch_fails_loudly_and_caches_nothing(tmp_path: Path) -> None:
    repository = _fake_repository(tmp_path / "maven", corrupt="hadoop-aws").as_uri()
    cache = tmp_path / "cache"
    result = _fetch(cache, repository)
    assert result.returncode != 0
    assert "does not match the published" in result.stderr
    assert not (cache / "hadoop-aws-3.4.2.jar").exists()
    assert not list(cache.glob(".*"))


def test_an_unreachable_repository_fails_loudly(tmp_path: Path) -> None:
    result = _fetch(tmp_path / "cache", (tmp_path / "no-such-repo").as_uri())
    assert result.returncode != 0
    assert "cannot download" in result.stderr
    assert "fetch_jars" in result.stderr
