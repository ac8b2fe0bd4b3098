"""Real warehouses for the tests of what happens inside them (reconciliation, erasure).

The tap's output goes straight into the real loaders Meltano installs (target-postgres
0.8.1 into a fresh schema of the PostgreSQL at 127.0.0.1:5432, target-duckdb 0.8.0 into
a fresh DuckDB file), configured as meltano.yml configures them, through a pipe, as
`tap | target` runs: no Meltano in between, so a test can kill either side at a chosen
moment. The end-to-end tests (test_e2e_meltano.py, test_reconcile.py's job test) go
through Meltano itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import typing as t
import uuid
from dataclasses import dataclass, field

import pytest

from tests.conftest import BIN_DIR, TAP
from tests.e2e_helpers import (
    PG_DATABASE,
    PG_HOST,
    PG_PASSWORD,
    PG_PORT,
    PG_USER,
    REPO_ROOT,
    STREAM_KEYS,
    TABLES,
    in_ci,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

RECONCILE = str(BIN_DIR / "hotjar-reconcile")
USER_LOOKUP = str(BIN_DIR / "hotjar-user-lookup")
TARGETS = {
    "postgres": REPO_ROOT / ".meltano/loaders/target-postgres/venv/bin/target-postgres",
    "duckdb": REPO_ROOT / ".meltano/loaders/target-duckdb/venv/bin/target-duckdb",
}
DBT = {
    "postgres": REPO_ROOT / ".meltano/utilities/dbt-postgres/venv/bin/dbt",
    "duckdb": REPO_ROOT / ".meltano/utilities/dbt-duckdb/venv/bin/dbt",
}


@dataclass
class Load:
    """One `tap | target` run."""

    tap_returncode: int
    tap_stderr: str
    target_returncode: int
    target_stderr: str
    states: list[dict] = field(default_factory=list)  # what the target confirmed, in order

    @property
    def ok(self) -> bool:
        return self.tap_returncode == 0 and self.target_returncode == 0

    @property
    def state(self) -> dict | None:
        return self.states[-1] if self.states else None


class Warehouse:
    """A fresh raw schema (and models schema) in one real warehouse."""

    kind: str
    url: str
    raw_schema: str
    models_schema: str

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)

    # The loader.

    def target_config(self) -> dict:
        raise NotImplementedError

    def load(
        self,
        tap_config: dict,
        *,
        state: dict | None = None,
        tap_command: list[str] | None = None,
        on_tap_started: Callable[[subprocess.Popen], None] | None = None,
        kill_target_after_lines: int | None = None,
    ) -> Load:
        """Run the tap into the loader, as `tap | target`.

        `on_tap_started` gets the tap's process (a simulator action may kill it at a
        chosen request); `kill_target_after_lines` SIGKILLs the target once it has been
        handed that many lines (the tap then runs to its end, writing into nothing).
        """
        run = self.workdir / f"load-{uuid.uuid4().hex[:8]}"
        run.mkdir()
        (run / "tap.json").write_text(json.dumps(tap_config))
        (run / "target.json").write_text(json.dumps(self.target_config()))
        args = [*(tap_command or [TAP]), "--config", str(run / "tap.json")]
        if state is not None:
            (run / "state.json").write_text(json.dumps(state))
            args += ["--state", str(run / "state.json")]
        with (run / "tap.err").open("wb") as tap_err, (run / "target.err").open("wb") as target_err:
            tap = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=tap_err, cwd=run)
            if on_tap_started is not None:
                on_tap_started(tap)
            assert tap.stdout is not None
            piped = kill_target_after_lines is None
            target = subprocess.Popen(
                [str(TARGETS[self.kind]), "--config", str(run / "target.json")],
                stdin=tap.stdout if piped else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=target_err,
                cwd=run,
            )
            feeder = None
            if piped:
                tap.stdout.close()  # the target holds the pipe now
            else:
                feeder = threading.Thread(target=_feed_then_kill, args=(tap, target, kill_target_after_lines))
                feeder.start()
            # Not communicate(): it would close the target's stdin under the feeder.
            assert target.stdout is not None
            out = target.stdout.read()
            target.wait(timeout=300)
            if feeder is not None:
                feeder.join(timeout=300)
            tap_code = tap.wait(timeout=300)
        # A target writes each state it has committed as one JSON line.
        states = [json.loads(line) for line in out.splitlines() if line.strip()]
        return Load(
            tap_code, (run / "tap.err").read_text(), target.returncode, (run / "target.err").read_text(), states
        )

    # The models: dbt from the utility's virtualenv, as Meltano's dbt-X:build runs it.

    def dbt_env(self) -> dict[str, str]:
        raise NotImplementedError

    def build_models(self) -> str:
        """`dbt build` of transform/ from the raw schema into the models schema; returns its output."""
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "HOTJAR_"))},
            "DBT_PROFILES_DIR": str(REPO_ROOT / "transform" / "profiles" / self.kind),
            "DBT_TARGET_PATH": str(self.workdir / "dbt-target"),
            "DBT_LOG_PATH": str(self.workdir / "dbt-logs"),
            "DBT_USE_COLORS": "false",
            "HOTJAR_SOURCE_SCHEMA": self.raw_schema,
            **self.dbt_env(),
        }
        proc = subprocess.run(
            [str(DBT[self.kind]), "build", "--project-dir", str(REPO_ROOT / "transform")],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        return proc.stdout

    def tables(self) -> list[tuple[str, str]]:
        """(schema, table) of every base table in the raw and models schemas."""
        return [
            (schema, table)
            for schema, table in self.query(
                "select table_schema, table_name from information_schema.tables"
                " where table_schema in (?, ?) and table_type = 'BASE TABLE'",
                [self.raw_schema, self.models_schema],
            )
        ]

    def every_row(self) -> Iterator[tuple[str, str, tuple]]:
        """Every row of every table in both schemas, as (schema, table, row)."""
        for schema, table in self.tables():
            for row in self.query(f'select * from "{schema}"."{table}"'):
                yield schema, table, row

    # Reading what is there.

    def connect(self) -> t.Any:
        raise NotImplementedError

    def query(self, sql: str, params: t.Sequence[t.Any] = ()) -> list[tuple]:
        raise NotImplementedError

    def keys(self, table: str, *, deleted: bool | None = False) -> set[tuple]:
        """Key tuples of a raw table (as text, positions as int): live rows, deleted ones, or all (None)."""
        columns = ", ".join(STREAM_KEYS[table])
        where = {False: " where _sdc_deleted_at is null", True: " where _sdc_deleted_at is not null", None: ""}[deleted]
        return {tuple(row) for row in self.query(f"select {columns} from {self.raw_schema}.{table}{where}")}

    def all_keys(self, *, deleted: bool | None = False) -> dict[str, set[tuple]]:
        return {table: self.keys(table, deleted=deleted) for table in TABLES}

    # The command that applies a reconciliation.

    def reconcile(self, evidence: Path, *extra: str, models: bool = False) -> subprocess.CompletedProcess:
        args = [RECONCILE, "--warehouse", self.url, "--evidence", str(evidence), "--raw-schema", self.raw_schema]
        args += ["--models-schema", self.models_schema if models else "none", *extra]
        return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)


def _feed_then_kill(tap: subprocess.Popen, target: subprocess.Popen, lines: int) -> None:
    """Copy the tap's output to the target and SIGKILL the target after `lines` lines;
    then read the rest of the tap's output, so that the tap runs to its end."""
    assert tap.stdout is not None and target.stdin is not None
    sent = 0
    for line in tap.stdout:  # read to the end whatever happens: the tap must not block
        if sent >= lines:
            continue
        try:
            target.stdin.write(line)
            sent += 1
            if sent == lines:
                target.stdin.flush()
                target.send_signal(signal.SIGKILL)
        except (OSError, ValueError):
            sent = lines  # the target is gone already
    with contextlib.suppress(OSError, ValueError):
        target.stdin.close()


class DuckDBWarehouse(Warehouse):
    kind = "duckdb"
    raw_schema = "hotjar"
    models_schema = "hotjar_analytics"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.path = workdir / "warehouse.duckdb"
        self.url = f"duckdb://{self.path}"

    def dbt_env(self) -> dict[str, str]:
        return {"DBT_DUCKDB_PATH": str(self.path), "DBT_DUCKDB_SCHEMA": self.models_schema}

    def target_config(self) -> dict:
        # As meltano.yml configures target-duckdb.
        return {"path": str(self.path), "default_target_schema": self.raw_schema, "add_metadata_columns": True}

    def connect(self) -> t.Any:
        import duckdb  # noqa: PLC0415 - 1.1.x, the format target-duckdb writes

        return duckdb.connect(str(self.path))

    def query(self, sql: str, params: t.Sequence[t.Any] = ()) -> list[tuple]:
        with contextlib.closing(self.connect()) as con:
            return con.execute(sql, list(params)).fetchall()


class PostgresWarehouse(Warehouse):
    kind = "postgres"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        tag = uuid.uuid4().hex[:10]
        self.raw_schema = f"hj_raw_{tag}"
        self.models_schema = f"hj_models_{tag}"
        auth = PG_USER + (f":{PG_PASSWORD}" if PG_PASSWORD else "")
        self.url = f"postgresql://{auth}@{PG_HOST}:{PG_PORT}/{PG_DATABASE}"

    def dbt_env(self) -> dict[str, str]:
        return {
            "DBT_POSTGRES_HOST": PG_HOST,
            "DBT_POSTGRES_PORT": str(PG_PORT),
            "DBT_POSTGRES_USER": PG_USER,
            "DBT_POSTGRES_PASSWORD": PG_PASSWORD,
            "DBT_POSTGRES_DBNAME": PG_DATABASE,
            "DBT_POSTGRES_SCHEMA": self.models_schema,
        }

    def target_config(self) -> dict:
        # As meltano.yml configures target-postgres.
        return {
            "host": PG_HOST,
            "port": PG_PORT,
            "user": PG_USER,
            "password": PG_PASSWORD,
            "database": PG_DATABASE,
            "default_target_schema": self.raw_schema,
            "add_record_metadata": True,
            "activate_version": True,
            "hard_delete": False,
            "use_copy": True,
            "validate_records": False,
        }

    def connect(self) -> t.Any:
        import psycopg  # noqa: PLC0415

        return psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD, dbname=PG_DATABASE, autocommit=True
        )

    def query(self, sql: str, params: t.Sequence[t.Any] = ()) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql.replace("?", "%s"), list(params)).fetchall()

    def drop(self) -> None:
        with self.connect() as con:
            for schema in (self.raw_schema, self.models_schema):
                con.execute(f'drop schema if exists "{schema}" cascade')


def postgres_reachable() -> bool:
    import psycopg  # noqa: PLC0415

    try:
        with psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, password=PG_PASSWORD, dbname=PG_DATABASE, connect_timeout=5
        ) as con:
            con.execute("select 1")
    except psycopg.Error:
        return False
    return True


@contextlib.contextmanager
def warehouse(kind: str, workdir: Path) -> Iterator[Warehouse]:
    if kind == "duckdb":
        yield DuckDBWarehouse(workdir)
        return
    if not postgres_reachable():
        if in_ci():
            pytest.fail(f"PostgreSQL at {PG_HOST}:{PG_PORT} is not reachable (CI=true: no skipping)")
        pytest.skip(f"PostgreSQL at {PG_HOST}:{PG_PORT} is not reachable")
    pg = PostgresWarehouse(workdir)
    try:
        yield pg
    finally:
        pg.drop()
