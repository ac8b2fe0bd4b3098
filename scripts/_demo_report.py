"""What scripts/demo.sh loaded: rows per table and NPS per survey.

Runs with the loader plugin's own Python (duckdb or psycopg come from there), so
nothing else needs installing, and the duckdb module reading the file is the one
that wrote it.

    python _demo_report.py duckdb PATH counts            -> JSON {table: rows}
    python _demo_report.py duckdb PATH report BEFORE     -> human-readable summary
    python _demo_report.py postgres CONFIG counts|report BEFORE|timestamptz|reset

CONFIG is the JSON of `meltano config print target-postgres`; a redacted password
is taken from TARGET_POSTGRES_PASSWORD (or libpq's PGPASSWORD) instead.
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
NPS_VALUES = ", ".join(f"'{n}'" for n in range(11))


def nps_sql(schema: str) -> str:
    # NPS = % promoters (9-10) - % detractors (0-6) over the answers to nps questions.
    return f"""
    with nps as (
        select a.survey_id, cast(a.answer as integer) as score
        from {schema}.survey_answers a
        where a.question_type = 'nps' and a.answer in ({NPS_VALUES})
    )
    select s.name, count(*) as answers,
           sum(case when score >= 9 then 1 else 0 end) as promoters,
           sum(case when score <= 6 then 1 else 0 end) as detractors,
           round(100.0 * (sum(case when score >= 9 then 1 else 0 end)
                        - sum(case when score <= 6 then 1 else 0 end)) / count(*), 1) as nps
    from nps join {schema}.surveys s on s.id = nps.survey_id
    group by s.name
    order by nps desc, s.name
    """


class Warehouse:
    label: str
    schema: str

    def query(self, sql: str) -> list[tuple]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def present_tables(self) -> set[str]:
        rows = self.query(
            f"select table_name from information_schema.tables where table_schema = '{self.schema}'"
        )
        return {name for (name,) in rows}

    def counts(self) -> dict[str, int]:
        present = self.present_tables()
        return {
            table: self.query(f"select count(*) from {self.schema}.{table}")[0][0]
            for table in TABLES
            if table in present
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
        """Drop this tap's four tables (only those) from the demo's schema."""
        for table in TABLES:
            self.con.execute(f'drop table if exists "{self.schema}"."{table}"')


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
    dupes = wh.query(f"select count(*) - count(distinct id) from {wh.schema}.survey_responses")[0][
        0
    ]
    print(f"  duplicate response ids: {dupes}")

    print("\nNPS per survey (survey_answers where question_type = 'nps'):")
    rows = wh.query(nps_sql(wh.schema))
    header = ("survey", "answers", "promoters", "detractors", "nps")
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
