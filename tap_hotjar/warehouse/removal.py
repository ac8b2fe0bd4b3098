"""Removing a set of responses from every table the project made: the piece that
reconciliation (responses Hotjar no longer has) and data-subject erasure share.

The set is a temporary table of response ids (`ResponseSet`), filled by the caller with
set-based SQL. `remove_responses` then, in the caller's transaction:

- raw tables: marks the responses and their answers deleted (`_sdc_deleted_at`, the
  Singer convention every model here filters on) or deletes them (`erase`);
- model tables (every base table in the models schemas, ours or others' built there):
  deletes the rows whose `response_id` is in the set, and the rows of tables keyed by
  `identified_user_id` alone (per-user aggregates such as `hotjar__respondents`) for the
  users those responses were identified as; the next `dbt build` rebuilds them from
  what is left. Aggregates without either column (`hotjar__nps`, `hotjar__ratings`) hold
  counts, not responses, and are corrected by that rebuild.

One statement per table, whatever the number of responses: cost is linear in the tables'
size, never a statement per row.
"""

from __future__ import annotations

import dataclasses
import itertools
import typing as t

from tap_hotjar.warehouse.connection import POSTGRES
from tap_hotjar.warehouse.tables import DELETED_AT, Catalog, quote

if t.TYPE_CHECKING:
    import datetime
    from collections.abc import Sequence

    from tap_hotjar.warehouse.connection import Connection
    from tap_hotjar.warehouse.tables import Table

_names = itertools.count(1)


class TempTable:
    """A temporary table of this connection, dropped by `drop` (or with the connection)."""

    def __init__(self, conn: Connection, columns: dict[str, str], prefix: str = "hotjar_tmp") -> None:
        self.conn = conn
        self.name = f"{prefix}_{next(_names)}"
        self.columns = columns
        spec = ", ".join(f"{quote(c)} {sql_type}" for c, sql_type in columns.items())
        conn.execute(f"create temporary table {quote(self.name)} ({spec})")

    @property
    def sql(self) -> str:
        return quote(self.name)

    def fill(self, rows: Sequence[Sequence[t.Any]]) -> None:
        """Insert all rows in one statement (arrays unnested), whatever their number."""
        if not rows:
            return
        names = list(self.columns)
        arrays = [list(column) for column in zip(*rows, strict=True)]
        if self.conn.kind == POSTGRES:
            typed = ", ".join(f"?::{self.columns[n]}[]" for n in names)
            sql = f"insert into {self.sql} select * from unnest({typed})"
        else:
            typed = ", ".join(f"unnest(?::{self.columns[n]}[])" for n in names)
            sql = f"insert into {self.sql} select {typed}"
        self.conn.execute(sql, arrays)

    def count(self) -> int:
        return int(self.conn.value(f"select count(*) from {self.sql}"))

    def drop(self) -> None:
        self.conn.execute(f"drop table if exists {self.sql}")


class ResponseSet(TempTable):
    """Response ids (text), the set `remove_responses` removes."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn, {"response_id": "text"}, prefix="hotjar_responses")


@dataclasses.dataclass
class Removed:
    """What one removal changed: rows per table (schema.table -> rows)."""

    raw: dict[str, int] = dataclasses.field(default_factory=dict)
    models: dict[str, int] = dataclasses.field(default_factory=dict)

    def raw_rows(self, table: str) -> int:
        return sum(n for name, n in self.raw.items() if name.endswith(f".{table}"))

    def add(self, other: Removed) -> None:
        for mine, theirs in ((self.raw, other.raw), (self.models, other.models)):
            for name, n in theirs.items():
                mine[name] = mine.get(name, 0) + n


def change_raw(
    catalog: Catalog,
    table: Table,
    keys: TempTable,
    *,
    erase: bool,
    now: datetime.datetime,
    on: dict[str, str] | None = None,
) -> int:
    """Mark deleted (or delete, with `erase`) the rows of a raw table whose key is in `keys`; how many.

    `keys`' columns match the table's by name, or as `on` maps them (key column -> table column).
    """
    on = on or {}
    same = " and ".join(f"k.{quote(n)} = t.{quote(on.get(n, n))}" for n in keys.columns)
    where = f"exists (select 1 from {keys.sql} as k where {same})"
    if erase:
        return catalog.conn.change(f"delete from {table.sql} as t where {where}")
    # A row marked already keeps the time it was first found gone.
    return catalog.conn.change(
        f"update {table.sql} as t set {quote(DELETED_AT)} = ? where {where} and t.{quote(DELETED_AT)} is null",
        [now],
    )


def remove_responses(
    catalog: Catalog,
    responses: ResponseSet,
    *,
    erase: bool,
    now: datetime.datetime,
    models: bool = True,
    identities: Sequence[str] = (),
) -> Removed:
    """Remove the responses in `responses`, and their answers, from the raw tables and every model table.

    `identities`: user ids whose per-user model rows go too, beyond those the models'
    own rows tie to the responses (an erasure knows its subject's ids).
    """
    removed = Removed()
    conn = catalog.conn
    ids = f"select response_id from {responses.sql}"
    for name, on in (("survey_answers", None), ("survey_responses", {"response_id": "id"})):
        table = catalog.raw(name)
        if table is not None:
            removed.raw[f"{table.schema}.{table.name}"] = change_raw(
                catalog, table, responses, erase=erase, now=now, on=on
            )
    if not models:
        return removed
    tables = catalog.models()
    # The users these responses were identified as, before the rows that say so go.
    users = TempTable(conn, {"identified_user_id": "text"}, prefix="hotjar_identities")
    users.fill([(i,) for i in identities])
    for table in tables:
        if table.has("response_id", "identified_user_id"):
            conn.execute(
                f"insert into {users.sql} select distinct cast(identified_user_id as text) from {table.sql}"
                f" where cast(response_id as text) in ({ids}) and identified_user_id is not null"
            )
    for table in tables:
        if table.has("response_id"):
            where = f"cast(response_id as text) in ({ids})"
        elif table.has("identified_user_id"):
            where = f"cast(identified_user_id as text) in (select identified_user_id from {users.sql})"
        else:
            continue
        removed.models[f"{table.schema}.{table.name}"] = conn.change(f"delete from {table.sql} where {where}")
    users.drop()
    return removed
