"""Spark's scratch space on this machine's disk: one folder per process, and the folders of
processes that are gone removed.

A run keeps its parsed landing rows on local disk (``landing_reads``): every customer's rows,
consenting or not, and the rows of customers who later withdraw. Spark deletes its scratch
when its JVM exits normally; a killed run leaves it behind for good. So each process gets its
own folder under one root (``STEDI_SCRATCH_DIR``), named by its process id, and every process
that builds the resources first removes the folders of processes that no longer run.
"""

import os
import shutil
import tempfile
from pathlib import Path


def default_scratch_root() -> Path:
    # Per user: another user's runs are not this user's to clean up (nor readable by them).
    return Path(tempfile.gettempdir()) / f"stedi-scratch-{os.getuid()}"


def process_scratch_dir(root: Path) -> Path:
    """This process's folder for ``spark.local.dir``, after the abandoned ones are removed."""
    remove_abandoned(root)
    mine = root / str(os.getpid())
    mine.mkdir(mode=0o700, parents=True, exist_ok=True)
    return mine


def remove_abandoned(root: Path) -> None:
    """Removes the folders below ``root`` of processes that no longer run."""
    if not root.is_dir():
        return
    for folder in root.iterdir():
        if folder.name.isdigit() and not _running(int(folder.name)):
            shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process holds the id now: not ours to judge
        return True
    return True
