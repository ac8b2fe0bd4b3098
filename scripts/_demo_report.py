"""What scripts/demo.sh loaded: rows per table, then the dbt models built on them.

Runs with the loader plugin's own Python (duckdb or psycopg come from there), so
nothing else needs installing, and the duckdb module reading the file is the one
that wrote it.

    python _demo_report.py duckdb PATH counts            -> JSON {table: rows}
    python _demo_report.py duckdb PATH report BEFORE     -> human-readable summary
    python _demo_report.py postgres CONFIG counts|report BEFORE|timestamptz|reset

CONFIG is the JSON of `meltano config print target-postgres`; a redacted password
is taken from TARGET_POSTGRES_PASSWORD (or libpq's PGPASSWORD) instead. The models
are read from the schema DEMO_MODELS_SCHEMA (default hotjar_analytics), where the
dbt utility built them.
"""

# ruff: noqa: T201, S608 - a command-line report; SQL is built from constant names.

from __future__ import annotations

import json
import os
import sys
import typing as t
import unicodedata
from pathlib import Path

TABLES = ("surveys", "survey_questions", "survey_responses", "survey_answers")
REDACTED = "*****"  # what `meltano config print` shows for a sensitive setting
MARTS = (
    "hotjar__answers",
    "hotjar__nps",
    "hotjar__ratings",
    "hotjar__response_attributes",
    "hotjar__respondents",
)


def nps_sql(models: str) -> str:
    # The promoter / passive / detractor counts are the model's (hotjar__nps, one
    # row per survey, question and ISO week); the demo only adds up the weeks.
    return f"""
    select survey_name, count(*) as weeks, sum(responses) as responses,
           sum(promoters) as promoters, sum(passives) as passives,
           sum(detractors) as detractors,
           round(100.0 * (sum(promoters) - sum(detractors)) / sum(responses), 1) as nps,
           max(week_start) as last_week
    from {models}.hotjar__nps
    group by survey_id, question_id, survey_name
    order by nps desc, survey_name
    """


class Warehouse:
    label: str
    schema: str
    models = os.environ.get("DEMO_MODELS_SCHEMA") or "hotjar_analytics"

    def query(self, sql: str) -> list[tuple]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def present_tables(self) -> set[str]:
        rows = self.query(f"select table_name from information_schema.tables where table_schema = '{self.schema}'")
        return {name for (name,) in rows}

    def counts(self) -> dict[str, int]:
        present = self.present_tables()
        return {
            table: self.query(f"select count(*) from {self.schema}.{table}")[0][0]
            for table in TABLES
            if table in present
        }

    def model_counts(self) -> dict[str, int]:
        present = {
            name
            for (name,) in self.query(
                f"select table_name from information_schema.tables where table_schema = '{self.models}'"
            )
        }
        return {
            mart: self.query(f"select count(*) from {self.models}.{mart}")[0][0] for mart in MARTS if mart in present
        }


class DuckDB(Warehouse):
    def __init__(self, path: str, schema: str) -> None:
        self.label, self.schema, self.path = f"{path} (DuckDB)", schema, path
        self.con: t.Any = None
        if Path(path).exists():
            import duckdb  # noqa: PLC0415 - only the DuckDB plugin's Python has it

            self.con = duckdb.connect(path, read_only=True)

    def query(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall() if self.con is not None else []

    def close(self) -> None:
        if self.con is not None:
            self.con.close()


class Postgres(Warehouse):
    def __init__(self, config: dict) -> None:
        import psycopg  # noqa: PLC0415 - only the PostgreSQL plugin's Python has it

        password = config.get("password")
        if password == REDACTED:
            password = os.environ.get("TARGET_POSTGRES_PASSWORD")
        self.schema = config.get("default_target_schema") or "hotjar"
        url = config.get("sqlalchemy_url")
        if url and url != REDACTED:
            dsn = url.replace("postgresql+psycopg://", "postgresql://")
            self.con = psycopg.connect(dsn, autocommit=True)
        else:
            self.con = psycopg.connect(
                host=config.get("host"),
                port=config.get("port"),
                user=config.get("user"),
                password=password or None,
                dbname=config.get("database"),
                autocommit=True,
            )
        info = self.con.info
        self.label = f"PostgreSQL {info.host}:{info.port}/{info.dbname}"

    def query(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()

    def close(self) -> None:
        self.con.close()

    def timestamptz(self) -> list[str]:
        """Apply scripts/postgres_timestamptz.sql; returns the columns it converted."""
        before = self._timestamp_columns()
        sql = (Path(__file__).parent / "postgres_timestamptz.sql").read_text()
        self.con.execute("select set_config('tap_hotjar.schema', %s, false)", [self.schema])
        self.con.execute(sql)
        return sorted(before - self._timestamp_columns())

    def _timestamp_columns(self) -> set[str]:
        rows = self.con.execute(
            "select table_name || '.' || column_name from information_schema.columns "
            "where table_schema = %s and data_type = 'timestamp without time zone'",
            [self.schema],
        ).fetchall()
        return {r[0] for r in rows}

    def reset(self) -> None:
        """Drop this tap's four tables and the models (only those) from the demo's schemas."""
        for table in TABLES:
            self.con.execute(f'drop table if exists "{self.schema}"."{table}"')
        staging = [f"stg_hotjar__{table}" for table in TABLES]
        for model in (*MARTS, *staging):
            self.con.execute(f'drop table if exists "{self.models}"."{model}"')


def _width(text: str) -> int:
    # CJK and emoji take two terminal columns.
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _ljust(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def report(wh: Warehouse, before: dict[str, int]) -> None:
    after = wh.counts()
    print(f"\nRows in {wh.label}, schema {wh.schema}:")
    print(f"  {'table':<18} {'rows':>7}  {'new this run':>12}")
    for table in TABLES:
        total = after.get(table, 0)
        new = total - before.get(table, 0)
        print(f"  {table:<18} {total:>7}  {new:>+12}")
    dupes = wh.query(f"select count(*) - count(distinct id) from {wh.schema}.survey_responses")[0][0]
    print(f"  duplicate response ids: {dupes}")

    models = wh.model_counts()
    print(f"\nModels built by dbt in schema {wh.models} (transform/, docs/analytics.md):")
    for mart in MARTS:
        print(f"  {mart:<28} {models.get(mart, 0):>7} rows")
    if "hotjar__nps" not in models:
        print("  (no models: the dbt step did not run)")
        return

    print("\nNPS per survey, from hotjar__nps (weekly rows added up; 9-10 promoters, 0-6 detractors):")
    rows = wh.query(nps_sql(wh.models))
    header = ("survey", "weeks", "answers", "promoters", "passives", "detractors", "nps", "last week")
    width = max([len(header[0])] + [_width(str(r[0])) for r in rows])
    survey, *numbers = header
    print(f"  {_ljust(survey, width)}  " + "  ".join(f"{h:>10}" for h in numbers))
    for name, *values in rows:
        print(f"  {_ljust(str(name), width)}  " + "  ".join(f"{v!s:>10}" for v in values))
    if not rows:
        print("  (no nps answers)")


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    kind, where, mode, *rest = argv[1:]
    wh: Warehouse
    if kind == "duckdb":
        wh = DuckDB(where, os.environ.get("DEMO_SCHEMA", "hotjar"))
    else:
        wh = Postgres(json.loads(Path(where).read_text()))
    try:
        if mode == "counts":
            print(json.dumps(wh.counts()))
        elif mode == "report":
            before = json.loads(Path(rest[0]).read_text()) if rest else {}
            report(wh, before)
        elif mode == "timestamptz" and isinstance(wh, Postgres):
            for column in wh.timestamptz():
                print(column)
        elif mode == "reset" and isinstance(wh, Postgres):
            wh.reset()
        else:
            print(__doc__, file=sys.stderr)
            return 2
    finally:
        wh.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
