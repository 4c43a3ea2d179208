"""The lake: one root folder or S3 prefix, the Spark session that reads and writes it, and the
Iceberg catalog that names its tables. Only the IO manager and the publish step use it.

A run writes every table to a branch of its own (write-audit-publish): the run's later steps
and checks read that branch, readers outside the run keep seeing ``main``. Tables the run reads
but does not write are read at the snapshot ``main`` had when the run first read them, so a
run sees one consistent lake even while another run publishes. ``publish`` makes the run's
branches current; a run that ends without publishing leaves ``main`` as it was.
"""

import fcntl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from dagster import (
    AssetCheckSeverity,
    ConfigurableResource,
    DagsterEventType,
    DagsterRunStatus,
    InitResourceContext,
    ResourceDependency,
)
from dagster_pyspark import PySparkResource
from pydantic import PrivateAttr
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from stedi_assets.identity import identity
from stedi_assets.run_cache import release_kept_frames
from stedi_assets.storage import iceberg
from stedi_assets.storage.filesystem import is_local
from stedi_assets.storage.glue import GlueLandingTables
from stedi_assets.storage.landing_reads import (
    list_landing,
    read_landing,
    release_parsed_landing,
)
from stedi_assets.storage.layout import TABLES, TableSpec, table_spec
from stedi_assets.storage.pause import BEFORE_PUBLISH, pause_point
from stedi_assets.storage.upgrade import forget_legacy_sqlite_catalog, upgrade_legacy_tables

# A run whose branch is older than this, and whose liveness cannot be asked, is abandoned.
ABANDONED_AFTER = timedelta(days=1)
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


@dataclass(frozen=True)
class Days:
    """Days of a day-partitioned table: partition ``column`` from ``first`` to ``last``.

    Rows without a day (quarantined lines of files in no day folder, that give no time) go
    with every run's days: every run reads all such files."""

    column: str
    first: str
    last: str

    @property
    def rows(self) -> Column:
        day = F.col(self.column)
        return day.between(self.first, self.last) | day.isNull()


@dataclass
class _RunState:
    pinned: dict[str, int | None] = field(default_factory=dict)  # table -> main's snapshot read
    written: dict[str, "_Write"] = field(default_factory=dict)  # tables on the run's branch
    holders: int = 0  # set-up copies of the lake resource serving the run


_runs: dict[str, _RunState] = {}


@dataclass(frozen=True)
class _Write:
    base: int | None  # main's snapshot the run's branch started from
    replaced: Column  # the rows the run's write replaced


# Liveness lock file -> (open file, holders in this process).
_liveness: dict[Path, tuple[IO[str], int]] = {}
_liveness_guard = threading.Lock()


class PublishConflict(RuntimeError):
    """Another run changed, since this run read it, a table this run's results depend on."""


@dataclass(frozen=True)
class Published:
    table: str
    before: int | None  # main's snapshot before publishing
    after: int  # main's snapshot now
    how: str  # "fast-forward" or "re-applied on the current main"


class Lake(ConfigurableResource):
    """Where the lakehouse lives: ``root`` is a local path or an ``s3://`` URI."""

    root: str
    spark: ResourceDependency[PySparkResource]
    database: str = "stedi"
    # The embedded catalog's file (local lakes); None on an s3:// lake, whose catalog is Glue.
    catalog_path: str | None = None
    # Registers the landing JSON tables in Glue (s3:// lakes).
    glue: ResourceDependency[GlueLandingTables | None] = None
    # Runs write branches and publish; queries only read main.
    writes: bool = True

    _run_id: str | None = PrivateAttr(default=None)
    _instance: Any = PrivateAttr(default=None)
    _own_state: "_RunState" = PrivateAttr(default_factory=lambda: _RunState())
    _ready: bool = PrivateAttr(default=False)

    # --- set-up ---------------------------------------------------------------------------

    @property
    def _state(self) -> "_RunState":
        """What the run has read and written. Dagster may set up a resource more than once
        per run (the IO manager's and the assets' copies): they share one state per run."""
        if self._run_id is None:
            return self._own_state
        return _runs.setdefault(self._run_id, _RunState())

    @property
    def _pinned(self) -> dict[str, int | None]:
        return self._state.pinned

    @property
    def _written(self) -> dict[str, "_Write"]:
        return self._state.written

    @property
    def catalog(self) -> iceberg.CatalogConfig:
        return iceberg.CatalogConfig(self.root, self.database, self.catalog_path)

    @property
    def spark_session(self) -> SparkSession:
        session = self.spark.spark_session
        if not self._ready:
            self.catalog.register(session)
            self._ready = True
        return session

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if is_local(self.root) and not Path(self.root).is_dir():
            raise FileNotFoundError(f"the lake {self.root} does not exist")
        if self.catalog_path:
            Path(self.catalog_path).parent.mkdir(parents=True, exist_ok=True)
        if not self.writes:
            return
        self._run_id = context.run.run_id if context.run else None
        self._instance = context.instance
        self._state.holders += 1
        if is_local(self.root):
            self._hold_liveness_lock(self._run_id)
        if self._state.holders > 1:
            return  # another copy of this resource set the lake up for the run already
        upgrade_legacy_tables(
            self.spark_session, self.catalog, self._forget_legacy_table, context.log
        )
        for table in iceberg.move_quarantine_tables(self.spark_session, self.catalog):
            context.log.info(f"moved {table} to the quarantine database (earlier versions)")
        self.drop_abandoned_branches(context.log)

    def _forget_legacy_table(self, table: str) -> None:
        """Removes the catalog entry an earlier version kept for ``table`` (storage/upgrade)."""
        if self.catalog_path is not None:
            forget_legacy_sqlite_catalog(self.catalog_path)(table)
        elif self.glue is not None:
            self.glue.drop_legacy_table(table)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if not self.writes:
            return
        # The copy Dagster tears down need not be the one it set up: take the run from the
        # context, like setup does.
        self._run_id = context.run.run_id if context.run else None
        self._instance = context.instance
        if is_local(self.root) and self._run_id is not None:
            self._release_liveness_lock(self._run_id)
        state = self._state
        state.holders -= 1
        if state.holders > 0:
            return  # another copy of this resource still serves the run
        # A run's end: the landing JSON it parsed and what its steps kept are freed.
        release_parsed_landing()
        release_kept_frames()
        unpublished = list(state.written)
        try:
            failed = self._failed_assets()
            if unpublished and failed == set():
                # A run without the publish step ("Materialize" on one asset in the UI) whose
                # blocking checks all passed publishes at its end.
                for item in self.publish():
                    context.log.info(f"published {item.table}: snapshot {item.after} ({item.how})")
            elif unpublished:
                context.log.warning(
                    f"nothing of run {self._run_id} was published for {', '.join(unpublished)} "
                    f"(failed: {', '.join(sorted(failed or {'unknown'}))}): readers keep the "
                    "previous snapshots; dropping the run's branches"
                )
                self._erase_withdrawals_of_failed_run(failed, context.log)
                for table in self._written:
                    iceberg.drop_branch(self.spark_session, self.catalog, table, self.branch)
        finally:
            _runs.pop(str(self._run_id), None)

    def _failed_assets(self) -> set[str] | None:
        """The assets of this run whose step failed or whose blocking check failed (a failed
        step that is no asset's counts by its step key); None when the run cannot be asked."""
        if self._instance is None or self._run_id is None:
            return None
        records = self._instance.all_logs(
            self._run_id,
            of_type={DagsterEventType.STEP_FAILURE, DagsterEventType.ASSET_CHECK_EVALUATION},
        )
        failed: set[str] = set()
        for record in records:
            event = record.dagster_event
            if event is None:
                return None
            if event.event_type == DagsterEventType.STEP_FAILURE:
                failed.add(event.step_key or "unknown step")
                continue
            evaluation = event.event_specific_data
            if (
                not evaluation.passed
                and evaluation.blocking
                and evaluation.severity == AssetCheckSeverity.ERROR
            ):
                failed.add(evaluation.asset_key.path[-1])
        return failed

    def _erase_withdrawals_of_failed_run(self, failed: set[str] | None, log: Any) -> None:
        """A withdrawal is never held back by an unrelated failure: when the run built
        customer_trusted and neither its step nor its blocking checks failed, the customers it
        no longer holds are erased from main, although nothing else of the run is published."""
        customers = self._written.get("customer_trusted")
        if customers is None or failed is None or "customer_trusted" in failed:
            return
        run_customers = iceberg.read(
            self.spark_session, self.catalog, "customer_trusted", branch=self.branch
        )
        withdrawn = self._withdrawn_customers(customers.base, run_customers)
        if withdrawn is None:
            return
        log.warning(
            "the run failed, but customer_trusted passed its checks: erasing the customers "
            "who withdrew consent from every published table and its history"
        )
        self.erase(withdrawn)

    @property
    def branch(self) -> str:
        if self._run_id is None:
            raise RuntimeError("only a run writes tables (this lake resource is read-only)")
        return iceberg.BRANCH_PREFIX + self._run_id.replace("-", "")

    def _liveness_file(self, run_id: str) -> Path:
        return Path(self.root) / "_catalog" / "runs" / f"{run_id}.lock"

    def _hold_liveness_lock(self, run_id: str) -> None:
        """A local run holds a lock file while it lives; the OS drops it when the process dies,
        so another run can tell a killed run's branches from a live run's. Dagster may set a
        resource up more than once per run: the process holds the lock once."""
        path = self._liveness_file(run_id)
        with _liveness_guard:
            if path in _liveness:
                handle, holders = _liveness[path]
                _liveness[path] = (handle, holders + 1)
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = path.open("w")
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _liveness[path] = (handle, 1)

    def _release_liveness_lock(self, run_id: str) -> None:
        path = self._liveness_file(run_id)
        with _liveness_guard:
            if path not in _liveness:
                return
            handle, holders = _liveness.pop(path)
            if holders > 1:
                _liveness[path] = (handle, holders - 1)
                return
            path.unlink(missing_ok=True)
            handle.close()  # releases the lock

    def _is_abandoned(self, run_id: str, branch_head_time: datetime) -> bool:
        if is_local(self.root):
            path = self._liveness_file(run_id)
            if not path.exists():
                return True
            with path.open("a") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False  # its run is alive
            path.unlink(missing_ok=True)
            return True
        record = self._instance.get_run_by_id(run_id) if self._instance is not None else None
        if record is not None and record.status in FINISHED:
            return True
        return datetime.now(UTC) - branch_head_time.astimezone(UTC) > ABANDONED_AFTER

    def drop_abandoned_branches(self, log: Any) -> None:
        """Drops the branches of runs that ended without publishing (killed, or failed before
        their own clean-up): nothing reads them, and their files then expire."""
        spark = self.spark_session
        for table in iceberg.table_names(spark, self.catalog):
            for branch, head in iceberg.refs(spark, self.catalog, table).items():
                if not branch.startswith(iceberg.BRANCH_PREFIX) or branch == self.branch:
                    continue
                run_id = _run_id_of(branch)
                head_time = iceberg.snapshot(spark, self.catalog, table, head).committed_at
                if self._is_abandoned(run_id, head_time):
                    log.info(f"dropping branch {branch} of {table}, left by ended run {run_id}")
                    iceberg.drop_branch(spark, self.catalog, table, branch)

    # --- reads ----------------------------------------------------------------------------

    def read_landing(self, table: str, days: tuple[str, str] | None = None) -> DataFrame:
        """The landing JSON of ``table`` as a DataFrame with the DDL's schema; with
        ``days=(first, last)``, only the files that may hold readings of those days."""
        return read_landing(self.spark_session, self.root, _landing_spec(table), days)

    def skipped_landing_files(self, table: str) -> list[tuple[str, str]]:
        """The entries below ``table``'s landing folder that are not read, with the reason:
        hidden names, links that loop or lead nowhere, and what cannot be read (quarantined
        as files)."""
        listing = list_landing(self.spark_session, _landing_spec(table).location(self.root))
        hidden = [(path, "hidden name (starts with . or _): not data") for path in listing.hidden]
        links = [(path, f"skipped: {reason}") for path, reason in listing.links]
        problems = [(p.path, f"not read, quarantined: {p.reason}") for p in listing.problems]
        return hidden + links + problems

    def read_table(self, table: str, days: Days | None = None) -> DataFrame:
        """A table as this run sees it: its branch when the run wrote it, else main at the
        snapshot the run first read. ``days``: only those days' partitions."""
        spec = table_spec(table)
        if spec.is_landing:
            return self.read_landing(table)
        spark = self.spark_session
        if not iceberg.table_exists(spark, self.catalog, table):
            raise FileNotFoundError(
                f"{table} has not been materialized in {self.root} yet: run every table first "
                "(`stedi run` without --days, or the whole job)"
            )
        if table in self._written:
            df = iceberg.read(spark, self.catalog, table, branch=self.branch)
        else:
            if table not in self._pinned:
                self._pinned[table] = iceberg.main_snapshot(spark, self.catalog, table)
            df = iceberg.read(spark, self.catalog, table, snapshot=self._pinned[table])
        return df.where(days.rows) if days is not None else df

    # --- writes ---------------------------------------------------------------------------

    def write_table(self, table: str, df: DataFrame, days: Days | None = None) -> iceberg.Snapshot:
        """Writes ``df`` to this run's branch of ``table`` in one commit: the whole table, or
        exactly ``days`` of a day-partitioned one (a day with no rows left ends up empty)."""
        spec = table_spec(table)
        if spec.is_landing:
            raise ValueError(
                f"{table} is a landing table: devices write it, the lakehouse reads it"
            )
        spark = self.spark_session
        catalog = self.catalog
        partition_column = days.column if days is not None else None
        iceberg.create_table(
            spark, catalog, table, df.schema, spec.location(self.root), partition_column
        )
        replaced = days.rows if days is not None else F.lit(True)
        # Columns in the table's order (Iceberg checks it), new ones after: the schema evolves.
        existing = spark.table(catalog.identifier(table)).columns
        df = df.select(
            *[c for c in existing if c in df.columns], *[c for c in df.columns if c not in existing]
        )
        if table not in self._written:
            base = self._pinned.get(table, iceberg.main_snapshot(spark, catalog, table))
            iceberg.create_branch(spark, catalog, table, self.branch, base)
            self._written[table] = _Write(base, replaced)
        iceberg.write(
            df, iceberg.branch_identifier(catalog, table, self.branch), replaced, self._run_id
        )
        head = iceberg.refs(spark, catalog, table)[self.branch]
        return iceberg.snapshot(spark, catalog, table, head)

    def register_landing(self, table: str) -> None:
        """On an s3:// lake, registers a landing table in Glue from its DDL in ``sql/``
        (Athena reads it there); a local lake's landing is read from files only."""
        if self.glue is not None:
            self.glue.register_landing(_landing_spec(table).name, self.root)

    def location(self, table: str) -> str:
        return table_spec(table).location(self.root)

    def table_name(self, table: str) -> str:
        return f"{table_spec(table).database(self.database)}.{table}"

    # --- publish --------------------------------------------------------------------------

    def publish(self) -> list[Published]:
        """Makes every table this run wrote current on main, upstream first.

        Main moved since the run branched (another run published): when every table this run
        read from main is unchanged, the run's rows are still right, so they are re-applied on
        the current main (its days, or the whole table); otherwise nothing is published and
        ``PublishConflict`` says which table changed."""
        pause_point(BEFORE_PUBLISH)
        spark, catalog = self.spark_session, self.catalog
        for table, pinned in self._pinned.items():
            if table in self._written:
                continue
            now = iceberg.main_snapshot(spark, catalog, table)
            if now != pinned:
                raise PublishConflict(
                    f"{table} changed on main since this run read it (snapshot {pinned} -> "
                    f"{now}): this run's results may rest on data that is no longer current, "
                    "so nothing was published; run it again"
                )
        customers = self._written.get("customer_trusted")
        published = []
        for table in list(self._written):
            written = self._written[table]
            before = iceberg.main_snapshot(spark, catalog, table)
            if before == written.base and iceberg.fast_forward(spark, catalog, table, self.branch):
                how = "fast-forward"
            else:
                # Only what this run replaced: its days of a partitioned table, else all of it.
                rows = iceberg.read(spark, catalog, table, branch=self.branch)
                iceberg.write(
                    rows.where(written.replaced),
                    catalog.identifier(table),
                    written.replaced,
                    self._run_id,
                )
                how = "re-applied on the current main"
            iceberg.drop_branch(spark, catalog, table, self.branch)
            del self._written[table]
            after = iceberg.main_snapshot(spark, catalog, table)
            assert after is not None
            published.append(Published(table, before, after, how))
        withdrawn = None
        if customers is not None:
            now = self.read_main("customer_trusted", self.main_snapshot("customer_trusted"))
            withdrawn = self._withdrawn_customers(customers.base, now)
        if withdrawn is not None:
            self.erase(withdrawn)
        else:
            for table in self.tables():
                self.expire_old_snapshots(table)
        return published

    def _withdrawn_customers(self, base: int | None, now: DataFrame) -> DataFrame | None:
        """Customers main's customer_trusted held at ``base`` (when the run began) that
        ``now`` (main after publishing, or the run's own table) no longer holds: their
        consent was withdrawn. As (email, serialNumber); None when none."""
        if base is None:
            return None
        # Compared as identities: a table of an earlier version may hold e-mails as written.
        before = self.read_main("customer_trusted", base).select(
            identity(F.col("email")).alias("email"),
            identity(F.col("serialNumber")).alias("serialNumber"),
        )
        gone = before.join(
            now.select(identity(F.col("email")).alias("email")), "email", "left_anti"
        )
        return gone if gone.take(1) else None

    def erase(self, customers: DataFrame) -> None:
        """Erases ``customers`` (email, serialNumber) from every table past landing on main:
        their rows are deleted, then every older snapshot is expired and other runs' branches
        dropped, so no data or metadata file still holds them (rollback points before the
        erasure go too)."""
        names = set(self.tables())
        for spec in TABLES.values():
            if spec.owner is None or spec.name not in names:
                continue
            column, key = spec.owner
            self.delete_rows(spec.name, column, customers.select(key).distinct())
        for table in names:
            self.erase_history(table)

    def main_snapshot(self, table: str) -> int | None:
        return iceberg.main_snapshot(self.spark_session, self.catalog, table)

    def read_main(self, table: str, snapshot: int | None = None) -> DataFrame:
        """``table`` on main (now, or at ``snapshot``), outside any run's branch."""
        return iceberg.read(self.spark_session, self.catalog, table, snapshot=snapshot)

    def delete_rows(self, table: str, column: str, keys: DataFrame) -> None:
        """Deletes from main every row of ``table`` whose ``column`` is among ``keys``' only
        column (copy-on-write: the files that held them are replaced)."""
        view = f"_erase_{table}"
        keys.createOrReplaceTempView(view)
        self.spark_session.sql(
            f"DELETE FROM {self.catalog.identifier(table)} "
            f"WHERE `{column}` IN (SELECT * FROM {view})"
        )

    def erase_history(self, table: str) -> None:
        """Expires every snapshot but main's current one, deleting the files only they
        referenced, drops the branches of other runs, and removes orphan files past the
        deadline: after this, no file of the table holds a row main no longer has (except
        uncommitted files of killed runs younger than ``iceberg.ORPHAN_DEADLINE``)."""
        spark, catalog = self.spark_session, self.catalog
        for branch in iceberg.run_branches(iceberg.refs(spark, catalog, table)):
            iceberg.drop_branch(spark, catalog, table, branch)
        iceberg.expire_snapshots(spark, catalog, table, datetime.now(UTC), retain_last=1)
        iceberg.remove_orphan_files(spark, catalog, table)

    def expire_old_snapshots(self, table: str) -> None:
        """Routine retention: snapshots older than ``iceberg.SNAPSHOT_RETENTION`` go (the
        procedure runs only when there is such a snapshot: it costs a Spark job)."""
        spark, catalog = self.spark_session, self.catalog
        cutoff = datetime.now(UTC) - iceberg.SNAPSHOT_RETENTION
        oldest = iceberg.oldest_snapshot_time(spark, catalog, table)
        if oldest is not None and oldest < cutoff:
            iceberg.expire_snapshots(spark, catalog, table, cutoff, retain_last=1)

    def tables(self) -> list[str]:
        return iceberg.table_names(self.spark_session, self.catalog)


def _run_id_of(branch: str) -> str:
    hex_id = branch.removeprefix(iceberg.BRANCH_PREFIX)
    if len(hex_id) != 32:
        return hex_id
    return f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}"


def _landing_spec(table: str) -> TableSpec:
    spec = table_spec(table)
    if not spec.is_landing:
        raise ValueError(f"{table} is not a landing table")
    return spec
