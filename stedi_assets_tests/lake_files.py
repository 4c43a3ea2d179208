"""What the files of a lake hold, read format by format (Parquet data, Avro manifests, JSON
metadata, the SQLite catalog), for the erasure tests: compressed pages hide plain bytes."""

import json
from pathlib import Path

import fastavro
import pyarrow.parquet as pq


def _text_of(path: Path) -> str:
    if path.suffix == ".parquet":
        return json.dumps(pq.read_table(path).to_pylist(), default=str)
    if path.suffix == ".avro":
        with path.open("rb") as stream:
            return json.dumps(list(fastavro.reader(stream)), default=repr)
    return path.read_bytes().decode("latin-1")


def files_holding(lake: Path, *needles: str) -> list[str]:
    """Every file below ``lake``, landing folders aside, that holds any of ``needles``."""
    found = []
    for path in sorted(lake.rglob("*")):
        relative = path.relative_to(lake)
        if not path.is_file() or "landing" in relative.parts:
            continue
        text = _text_of(path)
        # Bounds in manifests are bytes: repr() shows them as b'...'.
        if any(needle in text for needle in needles):
            found.append(str(relative))
    return found
