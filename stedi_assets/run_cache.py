"""DataFrames a step keeps cached for later jobs of the same run, freed when the run ends.

An asset returns a lazy DataFrame that the IO manager writes after the asset has returned, so
the asset cannot unpersist what that write still reads. It hands it here instead, and the lake
resource frees everything kept when the run ends."""

from contextlib import suppress

from pyspark.sql import DataFrame

_kept: list[DataFrame] = []


def keep_for_run(frame: DataFrame) -> DataFrame:
    """``frame``, cached until ``release_kept_frames``."""
    kept = frame.cache()
    _kept.append(kept)
    return kept


def release_kept_frames() -> None:
    """Frees every DataFrame kept by ``keep_for_run`` (at the end of a run)."""
    while _kept:
        with suppress(Exception):  # a stopped session has nothing left to free
            _kept.pop().unpersist()
