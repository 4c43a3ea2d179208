"""Headless Chromium (Debian's ``chromium``) on the Dagster UI: the asset graph page rendered
(``render_asset_graph``, ``--dump-dom``) and photographed (``screenshot_asset_graph``,
``--screenshot``). Each call is one browser with a fresh profile in its own process group,
killed with all its helpers afterwards. The server is reached through its GraphQL client
(``dagster_graphql_client``) for the URL, the repository and the asset names.
"""

import shutil
import signal
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

from stedi_assets_tests.dagster_graphql_client import GraphQLClient
from stedi_assets_tests.dagster_process import signal_group

CHROMIUM_INSTALL = "apt-get install chromium"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ASSET_GROUPS = ("landing", "trusted", "curated", "publish")
# Wide enough that the lineage graph, zoomed to fit the width, draws full asset nodes with
# their names (narrower, it draws minimal nodes with elided names like "accelerom…_landing").
GRAPH_WINDOW = (2400, 3200)


def find_chromium() -> str:
    """The headless-capable Chromium binary; raises (never skips) with the install line."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise FileNotFoundError(f"Chromium not found (looked for {CHROMIUM_NAMES}): {CHROMIUM_INSTALL}")


def asset_graph_url(server: GraphQLClient, groups: Iterable[str] = ASSET_GROUPS) -> str:
    """The global asset lineage page (``/asset-groups`` in Dagster 1.13) with every group
    expanded. The UI collapses groups by default when there are several; ``expanded`` lists
    group ids, ``global@global:<group>`` (or ``<repo>@<location>:<group>`` when the UI groups
    per code location), so both forms are given."""
    repo = server.repository()
    ids = [f"global@global:{g}" for g in groups]
    ids += [f"{repo.name}@{repo.location}:{g}" for g in groups]
    return f"{server.url}/asset-groups?{urllib.parse.urlencode({'expanded': ','.join(ids)})}"


def run_chromium(
    url: str,
    *args: str,
    window: tuple[int, int] = GRAPH_WINDOW,
    virtual_time_ms: int = 20_000,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[bytes]:
    """One headless Chromium invocation on ``url`` with a fresh profile and no network
    chatter (``args``: ``--dump-dom`` or ``--screenshot=PATH``). The virtual time budget lets
    the single-page app fetch its GraphQL data and lay the graph out before the dump."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [
            find_chromium(),
            "--headless",
            "--no-sandbox",  # runs as root in containers
            "--disable-gpu",
            "--disable-dev-shm-usage",  # small /dev/shm in containers
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--mute-audio",
            f"--user-data-dir={profile}",
            f"--window-size={window[0]},{window[1]}",
            f"--virtual-time-budget={virtual_time_ms}",
            *args,
            url,
        ]
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # so a hung browser can be killed with all its helpers
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            signal_group(process.pid, signal.SIGKILL)
            process.communicate()
            raise AssertionError(f"chromium did not finish within {timeout:.0f} s: {url}") from None
        finally:
            signal_group(process.pid, signal.SIGKILL)  # helpers that outlive the browser
    if process.returncode != 0:
        tail = stderr.decode(errors="replace")[-2000:]
        raise AssertionError(f"chromium exited with {process.returncode}: {tail}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def rendered_asset_names(html: str, names: Iterable[str]) -> set[str]:
    """The ``names`` that occur as a whole text node (``>name<``) in rendered HTML."""
    return {name for name in names if f">{name}<" in html}


def render_asset_graph(
    server: GraphQLClient, names: Iterable[str], attempts: int = 3
) -> tuple[str, set[str]]:
    """The asset graph page's DOM after rendering, retried with more virtual time until it
    names every one of ``names``; returns the DOM and the names found."""
    wanted = set(names)
    html, found = "", set[str]()
    for attempt in range(attempts):
        budget = 20_000 * (attempt + 1)
        dump = run_chromium(asset_graph_url(server), "--dump-dom", virtual_time_ms=budget)
        html = dump.stdout.decode(errors="replace")
        found = rendered_asset_names(html, wanted)
        if found == wanted:
            break
    return html, found


def screenshot_asset_graph(server: GraphQLClient, path: Path, attempts: int = 3) -> Path:
    """A PNG of the asset graph page, taken once the rendered DOM names every asset."""
    names = set(server.asset_groups())
    _html, found = render_asset_graph(server, names, attempts)
    if found != names:
        raise AssertionError(f"the asset graph page never named {sorted(names - found)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    run_chromium(asset_graph_url(server), f"--screenshot={path}", virtual_time_ms=30_000)
    if not path.is_file() or path.stat().st_size == 0:
        raise AssertionError(f"chromium wrote no screenshot to {path}")
    return path


def screenshot_page(url: str, path: Path, window: tuple[int, int] = (1600, 1000)) -> Path:
    """A PNG of any UI page (an asset's page, its partitions), after 30 s of virtual time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    run_chromium(url, f"--screenshot={path}", window=window, virtual_time_ms=30_000)
    if not path.is_file() or path.stat().st_size == 0:
        raise AssertionError(f"chromium wrote no screenshot to {path}")
    return path
