"""The tables the project made in a warehouse: the raw tables the loaders wrote, and the models dbt built.

Found by looking (information_schema, the same in PostgreSQL and DuckDB), never assumed:
a loader, a stream map or the user's own dbt models decide which tables and columns are
there. Names are quoted wherever they go into SQL.
"""

from __future__ import annotations

import dataclasses
import typing as t

from tap_hotjar.warehouse.connection import POSTGRES, WarehouseError

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from tap_hotjar.warehouse.connection import Connection

RAW_SCHEMA = "hotjar"
MODELS_SCHEMA = "hotjar_analytics"
# The raw tables and their keys (the streams' primary keys).
RAW_KEYS: dict[str, tuple[str, ...]] = {
    "surveys": ("id",),
    "survey_questions": ("survey_id", "id"),
    "survey_responses": ("id",),
    "survey_answers": ("response_id", "position"),
}
EXTRACTED_AT = "_sdc_extracted_at"
DELETED_AT = "_sdc_deleted_at"


def quote(name: str) -> str:
    """A SQL identifier, quoted (the same rule in PostgreSQL and DuckDB)."""
    return '"' + name.replace('"', '""') + '"'


@dataclasses.dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: frozenset[str]  # lower-case
    types: dict[str, str] = dataclasses.field(default_factory=dict, compare=False)  # column -> lower-case type

    @property
    def sql(self) -> str:
        return f"{quote(self.schema)}.{quote(self.name)}"

    def has(self, *columns: str) -> bool:
        return all(c in self.columns for c in columns)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the project's tables are: the raw schema, and the schemas dbt built models in."""

    raw_schema: str = RAW_SCHEMA
    models_schemas: tuple[str, ...] = (MODELS_SCHEMA,)

    @classmethod
    def from_options(cls, raw_schema: str, models_schema: Sequence[str]) -> Layout:
        """From the commands' --raw-schema and (repeated, comma-separated) --models-schema; `none`: no models."""
        names = [name.strip() for given in models_schema for name in given.split(",") if name.strip()]
        return cls(raw_schema, () if [n.lower() for n in names] == ["none"] else tuple(names))


def add_layout_options(group: t.Any, *, raw_default: str = RAW_SCHEMA, models_default: str = MODELS_SCHEMA) -> None:
    """--raw-schema and --models-schema, the same in every command that opens a warehouse."""
    group.add_argument(
        "--raw-schema", default=raw_default, metavar="SCHEMA", help=f"schema of the raw tables (default {raw_default})"
    )
    group.add_argument(
        "--models-schema",
        action="append",
        metavar="SCHEMA",
        help=f"schema of the dbt models, several comma-separated or repeated (default {models_default}); 'none': none",
    )
    # Not the option's own default: argparse appends the values given to an "append"
    # option's default list instead of replacing it.
    group.set_defaults(models_schema_default=models_default)


def layout_from(args: t.Any) -> Layout:
    """The Layout that add_layout_options' options describe."""
    return Layout.from_options(args.raw_schema, args.models_schema or [args.models_schema_default])


class Catalog:
    """The base tables (not views) of the layout's schemas, with their columns."""

    def __init__(self, conn: Connection, layout: Layout) -> None:
        self.conn = conn
        self.layout = layout
        schemas = [layout.raw_schema, *layout.models_schemas]
        marks = ", ".join("?" for _ in schemas)
        rows = conn.rows(
            "select c.table_schema, c.table_name, lower(c.column_name), lower(c.data_type)"
            " from information_schema.columns as c"
            " join information_schema.tables as t"
            "  on t.table_schema = c.table_schema and t.table_name = c.table_name"
            f" where c.table_schema in ({marks}) and t.table_type = 'BASE TABLE'",
            schemas,
        )
        columns: dict[tuple[str, str], dict[str, str]] = {}
        for schema, table, column, data_type in rows:
            columns.setdefault((schema, table), {})[column] = data_type
        self._tables = {key: Table(key[0], key[1], frozenset(cols), cols) for key, cols in columns.items()}
        found = {schema for schema, _ in self._tables} | set(self._existing_schemas(schemas))
        missing = [s for s in schemas if s not in found]
        if missing:
            where = conn.url.display
            raise WarehouseError(f"no schema {', '.join(map(repr, missing))} in the warehouse {where}")

    def _existing_schemas(self, schemas: Iterable[str]) -> list[str]:
        wanted = list(schemas)
        marks = ", ".join("?" for _ in wanted)
        sql = f"select schema_name from information_schema.schemata where schema_name in ({marks})"
        if self.conn.kind != POSTGRES:
            sql += " and catalog_name = current_database()"
        return [row[0] for row in self.conn.rows(sql, wanted)]

    def raw(self, name: str) -> Table | None:
        return self._tables.get((self.layout.raw_schema, name))

    def require_raw(self, name: str, *columns: str) -> Table:
        """A raw table that must be there with these columns, or one clear error."""
        table = self.raw(name)
        schema = self.layout.raw_schema
        if table is None:
            msg = f"no table {schema}.{name} in the warehouse {self.conn.url.display} (has the pipeline loaded it?)"
            raise WarehouseError(msg)
        missing = [c for c in columns if c not in table.columns]
        if missing:
            msg = f"the table {schema}.{name} has no column {', '.join(missing)}"
            if EXTRACTED_AT in missing or DELETED_AT in missing:
                msg += (
                    " (the loader writes _sdc_* columns only with its metadata setting on: target-postgres "
                    "add_record_metadata, target-duckdb add_metadata_columns)"
                )
            raise WarehouseError(msg)
        return table

    def models(self) -> list[Table]:
        """Every base table in the models schemas (ours, and any other model built there)."""
        return sorted(
            (tab for (schema, _), tab in self._tables.items() if schema in self.layout.models_schemas),
            key=lambda tab: (tab.schema, tab.name),
        )
