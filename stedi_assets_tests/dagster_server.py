"""The real Dagster webserver and daemon over a lake, for UI tests and scripts: one object that
is both the ``dagster dev`` process (``dagster_process``) and the GraphQL client of its
webserver (``dagster_graphql_client``). Rendering its pages is ``chromium``'s job. Usage::

    with dagster_server(lake) as server:
        run_id = server.launch_run("stedi_lakehouse", run_config, tags)
        (run,) = server.wait_for_runs([run_id])
        server.stop()
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from stedi_assets_tests.dagster_graphql_client import GraphQLClient
from stedi_assets_tests.dagster_process import DagsterProcess, dagster_process, start_process


class DagsterServer(GraphQLClient):
    """A running ``dagster dev``: every query of ``GraphQLClient`` on its port, failures with
    the tail of its log, and its process (``lake``, ``stop()``, ``processes()``, ``killed``)."""

    def __init__(self, process: DagsterProcess) -> None:
        super().__init__(process.port, fail=process.fail)
        self.process = process

    @property
    def lake(self) -> Path:
        return self.process.lake

    @property
    def home(self) -> Path:
        return self.process.home

    @property
    def killed(self) -> list[str]:
        """The processes ``stop()`` had to kill after SIGINT, as ``SIGNAL: pid cmdline``."""
        return self.process.killed

    def log_tail(self, lines: int = 60) -> str:
        return self.process.log_tail(lines)

    def processes(self) -> list[str]:
        return self.process.processes()

    def stop(self, timeout: float = 30.0) -> bool:
        return self.process.stop(timeout)


def start_server(
    lake: Path,
    home: Path,
    *,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 180.0,
) -> DagsterServer:
    """``dagster dev`` over ``lake``, ready (see ``start_process``). Stop it with ``stop()``."""
    return DagsterServer(start_process(lake, home, env=env, startup_timeout=startup_timeout))


@contextmanager
def dagster_server(
    lake: Path,
    *,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 180.0,
) -> Iterator[DagsterServer]:
    """``dagster dev`` over ``lake`` for the duration of the block (see ``dagster_process``);
    always stopped on exit."""
    with dagster_process(lake, home=home, env=env, startup_timeout=startup_timeout) as process:
        yield DagsterServer(process)
