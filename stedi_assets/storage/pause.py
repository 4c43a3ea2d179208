"""A named point where a run can be held, for tests of what readers and other runs see
between a run's write and its publish (no timing games).

``STEDI_PAUSE_AT=<point>:<folder>``: on reaching ``<point>`` the run creates
``<folder>/<point>.reached`` and waits until ``<folder>/<point>.go`` exists.
"""

import os
import time
from pathlib import Path

BEFORE_PUBLISH = "before-publish"


def pause_point(name: str) -> None:
    setting = os.environ.get("STEDI_PAUSE_AT", "")
    point, _, folder = setting.partition(":")
    if point != name or not folder:
        return
    Path(folder, f"{name}.reached").touch()
    while not Path(folder, f"{name}.go").exists():
        time.sleep(0.05)
