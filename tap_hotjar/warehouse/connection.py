"""A warehouse named by a URL: `postgresql://user[:password]@host[:port]/dbname` or
`duckdb:///absolute/path/to/file.duckdb`.

One connection type for both databases, with `?` placeholders in every statement (DuckDB's
own style; translated for psycopg). The password never leaves this module: `display`
masks it, and errors name the host and database, never the URL as given. A password may
also come from the environment as libpq defines it (`PGPASSWORD`, `~/.pgpass`).

The drivers are the `warehouse` extra (`pip install tap-hotjar[warehouse]`): psycopg 3,
and duckdb 1.1.x, the storage format target-duckdb 0.8.0 writes. A newer duckdb would
convert the file to a format target-duckdb can never open again (docs/pipelines.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import typing as t
import urllib.parse

from tap_hotjar.errors import MASK, HotjarError, remember_secret

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

POSTGRES = "postgresql"
DUCKDB = "duckdb"
URL_FORMS = "postgresql://user[:password]@host[:port]/dbname or duckdb:///absolute/path/to/file.duckdb"


class WarehouseError(HotjarError):
    """The warehouse cannot be used: a bad URL, no connection, a missing schema or table."""


@dataclasses.dataclass(frozen=True)
class WarehouseURL:
    """A parsed warehouse URL. `display` is safe to print (no password)."""

    kind: str  # POSTGRES or DUCKDB
    path: str = ""  # DuckDB: the file
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str | None = dataclasses.field(default=None, repr=False)
    dbname: str = ""

    @property
    def display(self) -> str:
        if self.kind == DUCKDB:
            return f"duckdb://{self.path}"
        auth = urllib.parse.quote(self.user, safe="")
        if self.password:
            auth += f":{MASK}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{urllib.parse.quote(self.dbname, safe='')}"


def parse_url(url: str) -> WarehouseURL:
    """The URL's parts, or a WarehouseError that says which form is expected (without the URL's password)."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise WarehouseError(f"not a warehouse URL ({exc}); expected {URL_FORMS}") from None
    if parts.password:
        remember_secret(urllib.parse.unquote(parts.password))
    scheme = parts.scheme.lower()
    if scheme == DUCKDB:
        path = urllib.parse.unquote(parts.path)
        if parts.netloc or not path.startswith("/") or path == "/":
            raise WarehouseError(
                f"a DuckDB URL needs an absolute path: duckdb:///absolute/path/to/file.duckdb, not {url!r}"
            )
        # duckdb://$ROOT/file with an absolute $ROOT gives duckdb:////...: one leading slash.
        return WarehouseURL(kind=DUCKDB, path=os.path.normpath("/" + path.lstrip("/")))
    if scheme in {"postgresql", "postgres"}:
        dbname = urllib.parse.unquote(parts.path.lstrip("/"))
        if not parts.hostname or not parts.username or not dbname or "/" in dbname:
            shown = WarehouseURL(kind=POSTGRES, host=parts.hostname or "", user=parts.username or "", dbname=dbname)
            raise WarehouseError(
                "a PostgreSQL URL needs a user, a host and a database: "
                f"postgresql://user[:password]@host[:port]/dbname, not {shown.display!r}"
            )
        return WarehouseURL(
            kind=POSTGRES,
            host=parts.hostname,
            port=port or 5432,
            user=urllib.parse.unquote(parts.username),
            password=urllib.parse.unquote(parts.password) if parts.password else None,
            dbname=dbname,
        )
    scheme_shown = f"{parts.scheme}:" if parts.scheme else "(none)"
    raise WarehouseError(f"unknown warehouse URL scheme {scheme_shown}; expected {URL_FORMS}")


class Connection:
    """A DB-API connection to either database, statements written with `?` placeholders."""

    def __init__(self, url: WarehouseURL, raw: t.Any) -> None:
        self.url = url
        self.kind = url.kind
        self._raw = raw

    def execute(self, sql: str, params: Sequence[t.Any] = ()) -> t.Any:
        """Run one statement; returns a cursor (fetchone / fetchall)."""
        if self.kind == POSTGRES:
            cursor = self._raw.cursor()
            # psycopg's placeholder is %s, and a literal % must then be written %%.
            cursor.execute(sql.replace("%", "%%").replace("?", "%s") if params else sql, tuple(params))
            return cursor
        return self._raw.execute(sql, list(params))

    def change(self, sql: str, params: Sequence[t.Any] = ()) -> int:
        """Run an INSERT, UPDATE or DELETE; returns how many rows it changed."""
        cursor = self.execute(sql, params)
        if self.kind == POSTGRES:
            return int(cursor.rowcount)
        row = cursor.fetchone()  # DuckDB answers a change with one row: the count
        return int(row[0]) if row else 0

    def rows(self, sql: str, params: Sequence[t.Any] = ()) -> list[tuple[t.Any, ...]]:
        return list(self.execute(sql, params).fetchall())

    def value(self, sql: str, params: Sequence[t.Any] = ()) -> t.Any:
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]

    @contextlib.contextmanager
    def transaction(self, *, commit: bool = True) -> Iterator[Connection]:
        """All statements inside commit together, or none does (an exception rolls back;
        so does the end of a transaction opened with `commit=False`, for a dry run)."""
        self.execute("begin")
        try:
            yield self
        except BaseException:
            self.execute("rollback")
            raise
        self.execute("commit" if commit else "rollback")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._raw.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(url: WarehouseURL | str, *, read_only: bool = False) -> Connection:
    """A connection, or a WarehouseError naming the warehouse (never its password)."""
    parsed = parse_url(url) if isinstance(url, str) else url
    if parsed.kind == DUCKDB:
        return Connection(parsed, _connect_duckdb(parsed, read_only=read_only))
    return Connection(parsed, _connect_postgres(parsed, read_only=read_only))


def _connect_duckdb(url: WarehouseURL, *, read_only: bool) -> t.Any:
    try:
        import duckdb  # noqa: PLC0415 - an optional dependency (the warehouse extra)
    except ImportError:
        raise WarehouseError(_missing_driver("duckdb")) from None
    # duckdb.connect creates a missing file: an empty new warehouse is never what was meant.
    if not os.path.isfile(url.path):
        raise WarehouseError(f"no DuckDB warehouse at {url.path} (the file does not exist)")
    try:
        raw = duckdb.connect(url.path, read_only=read_only)
    except duckdb.Error as exc:
        raise WarehouseError(f"cannot open the DuckDB warehouse {url.path}: {exc}") from None
    # Loaders write UTC into timestamp columns (see the PostgreSQL side).
    with contextlib.suppress(duckdb.Error):
        raw.execute("set TimeZone = 'UTC'")
    return raw


def _connect_postgres(url: WarehouseURL, *, read_only: bool) -> t.Any:
    try:
        import psycopg  # noqa: PLC0415 - an optional dependency (the warehouse extra)
    except ImportError:
        raise WarehouseError(_missing_driver("psycopg")) from None
    options: dict[str, t.Any] = {
        "host": url.host,
        "port": url.port,
        "user": url.user,
        "dbname": url.dbname,
        "connect_timeout": 10,
        "autocommit": True,  # transactions are explicit: Connection.transaction()
    }
    if url.password is not None:
        options["password"] = url.password  # else libpq's PGPASSWORD or ~/.pgpass
    # Loaders write UTC into timestamp columns: compare and convert in UTC, whatever
    # the server's default time zone.
    options["options"] = "-c timezone=UTC" + (" -c default_transaction_read_only=on" if read_only else "")
    try:
        return psycopg.connect(**options)
    except psycopg.Error as exc:
        # libpq's message names host and port, never the password.
        reason = " ".join(str(exc).split())
        raise WarehouseError(f"cannot connect to the PostgreSQL warehouse {url.display}: {reason}") from None


def _missing_driver(module: str) -> str:
    return (
        f"the {module} driver is not installed; install the warehouse extra: "
        "pip install 'tap-hotjar[warehouse]' (Meltano: the pip_url in meltano.yml has it)"
    )
