"""The ``dagster dev`` process (webserver and daemon) over a lake: start, wait, stop.

``start_process(lake, home)`` starts ``dagster dev -h 127.0.0.1 -p <free port>`` from the
repository root (so ``workspace.yaml`` loads ``stedi_assets.definitions``) with ``home`` as
``DAGSTER_HOME`` and ``STEDI_LAKE=<lake>``, and waits until the code location has loaded and
the daemon is heartbeating; ``dagster_process(lake)`` does the same with a temporary home for
the duration of a block and stops every process on exit. ``dagster dev`` rather than
``dagster-webserver`` + ``dagster-daemon run``: one command, and the webserver and the daemon
share one code server (one import of the definitions instead of two, which matters on a 2-core
machine).

Stopping: the child runs in its own session (process group), so it can be signalled as a whole
and never receives the test runner's signals. A background ``dagster dev`` inherits an ignored
SIGINT (and maps SIGTERM onto SIGINT), so it would ignore both; it is therefore started through
a tiny wrapper that restores the default SIGINT handler and then ``exec``s ``dagster`` (same
pid). ``stop()`` sends SIGINT to the group (what Ctrl-C in a terminal does), waits up to 30 s,
and only then escalates to SIGTERM and SIGKILL; it reports which processes had to be killed.

The instance (``<home>/dagster.yaml``): storage in the temporary home, telemetry and the
new-user dialog off (no network; nothing over the screenshot), a run queue of one run at a
time (one Spark JVM at a time on 2 cores) that is polled every second instead of every 5 s,
and sensors evaluated in threads.

Talking to the server is ``dagster_graphql_client``'s job; ``dagster_server`` puts the two
together.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from stedi_assets_tests.dagster_graphql_client import HOST, GraphQLClient, GraphQLError

REPO = Path(__file__).resolve().parents[1]

# Restores the default SIGINT handler, then becomes the command (exec keeps the pid).
_EXEC_WITH_DEFAULT_SIGINT = (
    "import os,signal,sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)

INSTANCE_YAML = """\
# A throwaway instance written by stedi_assets_tests/dagster_process.py.
telemetry:
  enabled: false
nux:
  enabled: false
run_coordinator:
  module: dagster
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 1
    dequeue_interval_seconds: 1
sensors:
  use_threads: true
  num_workers: 4
"""

_ANSI_COLOR = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class DagsterProcess:
    """A running ``dagster dev`` process group; see the module docstring."""

    lake: Path
    home: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    killed: list[str] = field(default_factory=list)
    stopped_gracefully: bool | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the server's combined stdout and stderr (for failure messages)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no server log)"
        text = _ANSI_COLOR.sub("", text)  # dagster dev logs in color
        return "\n".join(text.splitlines()[-lines:])

    def fail(self, message: str) -> AssertionError:
        return AssertionError(f"{message}\n--- dagster dev log (tail) ---\n{self.log_tail()}")

    def processes(self) -> list[str]:
        """Live processes of the server's process group, as ``pid cmdline``."""
        return group_members(self.process.pid)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stops the whole process group: SIGINT, then SIGTERM/SIGKILL after ``timeout``.
        True if everything exited on SIGINT; idempotent."""
        if self.stopped_gracefully is not None:
            return self.stopped_gracefully
        pgid = self.process.pid  # leader of its own session, so pgid == pid
        signal_group(pgid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        # The leader exits once its children have; a run worker could linger after it.
        while time.monotonic() < deadline and (self.process.poll() is None or self.processes()):
            time.sleep(0.2)
        graceful = self.process.poll() is not None and not self.processes()
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            left = self.processes()
            if not left and self.process.poll() is not None:
                break
            self.killed.extend(f"{sig.name}: {p}" for p in left)
            signal_group(pgid, sig)
            end = time.monotonic() + grace
            while time.monotonic() < end and self.processes():
                time.sleep(0.2)
        self.process.wait(timeout=5)
        self.stopped_gracefully = graceful
        return graceful


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def group_members(pgid: int) -> list[str]:
    """Live (non-zombie) processes whose process group is ``pgid``, as ``pid cmdline``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:  # exited while we looked
            continue
        # Fields after "(comm)": state, ppid, pgrp, ...; comm itself may contain spaces.
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            members.append(f"{entry.name} {cmdline[:200]}")
    return members


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Sends ``sig`` to every process of group ``pgid``; nothing if the group is gone."""
    with suppress(ProcessLookupError):  # nothing left in the group
        os.killpg(pgid, sig)


def _dagster_executable() -> str:
    """The ``dagster`` script next to this interpreter (the project's venv)."""
    candidate = Path(sys.executable).parent / "dagster"
    return str(candidate) if candidate.exists() else "dagster"


def start_process(
    lake: Path,
    home: Path,
    *,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 180.0,
) -> DagsterProcess:
    """Starts ``dagster dev`` over ``lake`` with ``home`` as DAGSTER_HOME and waits until the
    code location is loaded and the daemon is heartbeating. Stop it with ``stop()``."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML, encoding="utf-8")
    port = free_port()
    child_env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "STEDI_LAKE": str(lake),
        "SPARK_LOCAL_IP": "127.0.0.1",
        # Small Spark settings for a 2-core machine unless the caller says otherwise.
        "STEDI_SPARK_MASTER": os.environ.get("STEDI_SPARK_MASTER", "local[2]"),
        "STEDI_SHUFFLE_PARTITIONS": os.environ.get("STEDI_SHUFFLE_PARTITIONS", "2"),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    log_path = home / "dagster-dev.log"
    command = [
        sys.executable,
        "-c",
        _EXEC_WITH_DEFAULT_SIGINT,
        _dagster_executable(),
        "dev",
        "-h",
        HOST,
        "-p",
        str(port),
        "-w",
        str(REPO / "workspace.yaml"),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: signalled as a whole, never by pytest
        )
    server = DagsterProcess(lake=lake, home=home, port=port, process=process, log_path=log_path)
    try:
        _wait_until_ready(server, startup_timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_ready(server: DagsterProcess, timeout: float) -> None:
    """Polls /server_info, then the workspace (code location loaded) and the daemon's
    heartbeat (queued runs and sensors need it)."""
    client = GraphQLClient(server.port, fail=server.fail)
    deadline = time.monotonic() + timeout
    stage = "webserver"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise server.fail(f"dagster dev exited with {server.process.returncode}")
        try:
            if stage == "webserver":
                with urllib.request.urlopen(f"{server.url}/server_info", timeout=5) as response:
                    if response.status == 200:
                        stage = "code location"
            if stage == "code location":
                entries = client.location_entries()
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    errors = [
                        e
                        for e in entries
                        if e["locationOrLoadError"]["__typename"] == "PythonError"
                    ]
                    if errors:
                        raise server.fail(f"code location failed to load: {errors}")
                    stage = "daemon"
            if stage == "daemon":
                statuses = client.daemon_statuses()
                wanted = {"QUEUED_RUN_COORDINATOR", "SENSOR"}
                if all(s["healthy"] for s in statuses if s["daemonType"] in wanted):
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, GraphQLError):
            pass  # not up yet
        time.sleep(0.5)
    raise server.fail(f"dagster dev not ready after {timeout:.0f} s (waiting for the {stage})")


@contextmanager
def dagster_process(
    lake: Path,
    *,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 180.0,
) -> Iterator[DagsterProcess]:
    """``dagster dev`` over ``lake`` for the duration of the block (see ``start_process``); a
    temporary DAGSTER_HOME unless ``home`` is given. Always stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="dagster-home-") as temp_home:
        server = start_process(
            lake, home or Path(temp_home), env=env, startup_timeout=startup_timeout
        )
        try:
            yield server
        finally:
            server.stop()
