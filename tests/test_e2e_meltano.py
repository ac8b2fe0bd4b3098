"""End to end through Meltano itself: simulator -> tap-hotjar -> target -> warehouse.

Each scenario runs `meltano run` twice against this checkout's meltano.yml: a first,
full run, then - after the simulator received new responses - an incremental run
from Meltano's state. The warehouse is then queried: one table per stream, row
counts and keys equal to the simulator's ground truth, primary keys as the streams
declare them, column types, no duplicates, and exactly the new rows on the second
run.

PostgreSQL: the server at 127.0.0.1:5432 (user postgres, database test), one fresh
schema per run of this module, dropped afterwards. Outside CI these tests skip when
that server is not reachable; under CI=true they fail instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pytest
import yaml

from hotjar_simulator import HotjarSimulator
from tests.e2e_helpers import (
    EMAIL_RE,
    REPO_ROOT,
    STREAM_KEYS,
    TABLES,
    Pipeline,
    Truth,
    add_responses_everywhere,
    ground_truth,
    pg_connect,
    pg_schema_prefix,
    postgres_env,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

NEW_PER_SURVEY = 7
PII_SALT = "e2e-test-salt"

# What each loader makes of the tap's JSON Schema types (target-postgres 0.8.1,
# target-duckdb 0.8.0), asserted so that a loader upgrade that changes them shows.
# Neither has a setting for time zones: date-time becomes a timestamp without time
# zone holding UTC (the tap emits +00:00). For PostgreSQL the README's one-time
# recipe (scripts/postgres_timestamptz.sql) converts them; tested below. Arrays of
# objects become jsonb[] in PostgreSQL, integers (bounded to 64 bits in the schemas) BIGINT in DuckDB.
PG_TYPES = {
    ("surveys", "id"): "text",
    ("surveys", "site_id"): "bigint",
    ("surveys", "created_time"): "timestamp without time zone",
    ("surveys", "updated_time"): "timestamp without time zone",
    ("surveys", "is_enabled"): "boolean",
    ("surveys", "questions"): "jsonb[]",
    ("survey_questions", "position"): "bigint",
    ("survey_questions", "is_required"): "boolean",
    ("survey_questions", "labels"): "jsonb",
    ("survey_questions", "choices"): "jsonb[]",
    ("survey_responses", "created_time"): "timestamp without time zone",
    ("survey_responses", "is_complete"): "boolean",
    ("survey_responses", "window_size"): "jsonb",
    ("survey_responses", "user_attributes"): "jsonb[]",
    ("survey_responses", "answers"): "jsonb[]",
    ("survey_answers", "position"): "bigint",
    ("survey_answers", "answer"): "text",
    ("survey_answers", "question_type"): "text",
    ("survey_answers", "tags"): "jsonb[]",
    ("survey_answers", "created_time"): "timestamp without time zone",
}
DUCKDB_TYPES = {
    ("surveys", "id"): "VARCHAR",
    ("surveys", "site_id"): "BIGINT",
    ("surveys", "created_time"): "TIMESTAMP",
    ("surveys", "is_enabled"): "BOOLEAN",
    ("surveys", "questions"): "JSON",
    ("survey_questions", "position"): "BIGINT",
    ("survey_questions", "is_required"): "BOOLEAN",
    ("survey_questions", "labels"): "JSON",
    ("survey_responses", "created_time"): "TIMESTAMP",
    ("survey_responses", "is_complete"): "BOOLEAN",
    ("survey_responses", "window_size"): "JSON",
    ("survey_responses", "user_attributes"): "JSON",
    ("survey_answers", "position"): "BIGINT",
    ("survey_answers", "answer"): "VARCHAR",
    ("survey_answers", "tags"): "JSON",
    ("survey_answers", "created_time"): "TIMESTAMP",
}


# ------------------------------------------------------------------- fixtures


def _simulator(seed: int) -> HotjarSimulator:
    # The documented rate limit stays on: the tap must live with it.
    return HotjarSimulator(seed=seed, sites=3, surveys_per_site=4, responses_per_survey=120).start()


class Snapshot:
    """What a warehouse holds right after one run."""

    def __init__(
        self,
        tables: set[str],
        counts: dict[str, int],
        distinct: dict[str, int],
        keys: dict[str, set[tuple]],
        types: dict[tuple[str, str], str],
        primary_keys: dict[str, set[str]],
    ) -> None:
        self.tables = tables
        self.counts = counts
        self.distinct = distinct
        self.keys = keys
        self.types = types
        self.primary_keys = primary_keys


def _key_sql(table: str) -> str:
    return ", ".join(STREAM_KEYS[table])


def _pg_snapshot(schema: str) -> Snapshot:
    with pg_connect() as con:
        tables = {
            r[0]
            for r in con.execute("select table_name from information_schema.tables where table_schema = %s", [schema])
        }
        counts, distinct, keys = {}, {}, {}
        for table in TABLES:
            if table not in tables:
                continue
            key = _key_sql(table)
            counts[table] = con.execute(f'select count(*) from "{schema}".{table}').fetchall()[0][0]
            distinct[table] = con.execute(
                f'select count(*) from (select distinct {key} from "{schema}".{table}) d'
            ).fetchall()[0][0]
            keys[table] = set(con.execute(f'select {key} from "{schema}".{table}').fetchall())
        types = {}
        for table, column, data_type, udt in con.execute(
            "select table_name, column_name, data_type, udt_name from information_schema.columns "
            "where table_schema = %s",
            [schema],
        ):
            types[(table, column)] = f"{udt.lstrip('_')}[]" if data_type == "ARRAY" else data_type
        primary_keys: dict[str, set[str]] = {}
        for table, column in con.execute(
            """
            select tc.table_name, kcu.column_name
            from information_schema.table_constraints tc
            join information_schema.key_column_usage kcu
              on kcu.constraint_schema = tc.constraint_schema
             and kcu.constraint_name = tc.constraint_name
             and kcu.table_name = tc.table_name
            where tc.table_schema = %s and tc.constraint_type = 'PRIMARY KEY'
            """,
            [schema],
        ):
            primary_keys.setdefault(table, set()).add(column)
    return Snapshot(tables, counts, distinct, keys, types, primary_keys)


def _duckdb_snapshot(path: Path, schema: str = "hotjar") -> Snapshot:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ?", [schema]
            ).fetchall()
        }
        counts, distinct, keys = {}, {}, {}
        for table in TABLES:
            if table not in tables:
                continue
            key = _key_sql(table)
            counts[table] = con.execute(f"select count(*) from {schema}.{table}").fetchall()[0][0]
            distinct[table] = con.execute(
                f"select count(*) from (select distinct {key} from {schema}.{table})"
            ).fetchall()[0][0]
            keys[table] = {
                tuple(int(v) if isinstance(v, int) else v for v in row)
                for row in con.execute(f"select {key} from {schema}.{table}").fetchall()
            }
        types = {
            (t, c): d
            for t, c, d in con.execute(
                "select table_name, column_name, data_type from information_schema.columns where table_schema = ?",
                [schema],
            ).fetchall()
        }
        primary_keys = {
            t: set(cols)
            for t, cols in con.execute(
                "select table_name, constraint_column_names from duckdb_constraints() "
                "where schema_name = ? and constraint_type = 'PRIMARY KEY'",
                [schema],
            ).fetchall()
        }
    finally:
        con.close()
    return Snapshot(tables, counts, distinct, keys, types, primary_keys)


def _expected_keys(truth: Truth) -> dict[str, set[tuple]]:
    return {
        "surveys": {(i,) for i in truth.survey_ids},
        "survey_questions": truth.question_keys,
        "survey_responses": {(i,) for i in truth.response_ids},
        "survey_answers": truth.answer_keys,
    }


class Scenario:
    """Two runs of one pipeline, with the ground truth and a snapshot after each."""

    def __init__(self) -> None:
        self.truth: list[Truth] = []
        self.snapshots: list[Snapshot] = []
        self.new_responses: list[dict] = []
        self.responses_requests_second_run: int = 0
        self.logs: list[str] = []


def _two_runs(pipeline: Pipeline, blocks: tuple[str, ...], snapshot, between=None) -> Scenario:  # type: ignore[no-untyped-def]
    scenario = Scenario()
    sim = pipeline.sim
    scenario.truth.append(ground_truth(sim))
    pipeline.run(*blocks)
    scenario.snapshots.append(snapshot())
    if between is not None:
        between()

    scenario.new_responses = add_responses_everywhere(sim, NEW_PER_SURVEY)
    scenario.truth.append(ground_truth(sim))
    sim.reset_counts()
    pipeline.run(*blocks)
    scenario.responses_requests_second_run = sim.counts()["responses"]
    scenario.snapshots.append(snapshot())
    return scenario


@pytest.fixture(scope="module")
def postgres_schema() -> Iterator[str]:
    with pg_schema_prefix("e2e_hotjar") as schema:  # and f"{schema}_batch"
        yield schema


@pytest.fixture(scope="module")
def postgres_runs(meltano: Path, postgres_schema: str, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    workdir = tmp_path_factory.mktemp("e2e-postgres")
    with _simulator(seed=11) as sim:
        pipeline = Pipeline(meltano=meltano, sim=sim, workdir=workdir, target_env=postgres_env(postgres_schema))
        # Between the runs, the README's one-time timestamptz recipe: the second,
        # incremental run must load into the converted columns as well.
        return _two_runs(
            pipeline,
            ("tap-hotjar", "target-postgres"),
            lambda: _pg_snapshot(postgres_schema),
            between=lambda: _apply_timestamptz_recipe(postgres_schema),
        )


@pytest.fixture(scope="module")
def postgres_batch_runs(meltano: Path, postgres_schema: str, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """The job hotjar-to-postgres: the tap writes BATCH files, target-postgres loads them with COPY."""
    schema = f"{postgres_schema}_batch"
    workdir = tmp_path_factory.mktemp("e2e-postgres-batch")
    try:
        with _simulator(seed=13) as sim:
            pipeline = Pipeline(meltano=meltano, sim=sim, workdir=workdir, target_env=postgres_env(schema))
            scenario = _two_runs(pipeline, ("tap-hotjar--batch", "target-postgres"), lambda: _pg_snapshot(schema))
            scenario.logs = [(workdir / f"run-{n}.log").read_text(errors="replace") for n in (1, 2)]
            return scenario
    finally:
        with pg_connect() as con:
            con.execute(f'drop schema if exists "{schema}" cascade')


def _apply_timestamptz_recipe(schema: str) -> None:
    sql = (REPO_ROOT / "scripts" / "postgres_timestamptz.sql").read_text()
    with pg_connect() as con:
        con.execute("select set_config('tap_hotjar.schema', %s, false)", [schema])
        con.execute(sql)


@pytest.fixture(scope="module")
def duckdb_runs(meltano: Path, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    workdir = tmp_path_factory.mktemp("e2e-duckdb")
    db = workdir / "warehouse.duckdb"
    with _simulator(seed=12) as sim:
        pipeline = Pipeline(
            meltano=meltano,
            sim=sim,
            workdir=workdir,
            target_env={"TARGET_DUCKDB_PATH": str(db)},
        )
        return _two_runs(pipeline, ("tap-hotjar", "target-duckdb"), lambda: _duckdb_snapshot(db))


@pytest.fixture(params=["postgres", "postgres_batch", "duckdb"])
def runs(request: pytest.FixtureRequest) -> Scenario:
    return request.getfixturevalue(f"{request.param}_runs")


# ---------------------------------------------------------- both warehouses


def test_first_run_creates_one_table_per_stream(runs: Scenario) -> None:
    assert set(TABLES) <= runs.snapshots[0].tables


def test_first_run_row_counts_equal_the_simulators_ground_truth(runs: Scenario) -> None:
    truth = runs.truth[0]
    assert runs.snapshots[0].counts == truth.counts()
    # Not only as many rows: the very same keys.
    assert runs.snapshots[0].keys == _expected_keys(truth)


def test_primary_keys_are_the_stream_keys(runs: Scenario) -> None:
    primary_keys = runs.snapshots[0].primary_keys
    for table, key in STREAM_KEYS.items():
        assert primary_keys.get(table) == set(key), table


def test_second_run_loads_exactly_the_new_responses_and_answers(runs: Scenario) -> None:
    first, second = runs.snapshots
    new = runs.new_responses
    assert new, "the simulator added no responses"
    new_answer_keys = {(r["id"], i) for r in new for i in range(len(r.get("answers") or []))}

    assert second.keys["survey_responses"] - first.keys["survey_responses"] == {(r["id"],) for r in new}
    assert second.keys["survey_answers"] - first.keys["survey_answers"] == new_answer_keys
    assert second.counts["survey_responses"] == first.counts["survey_responses"] + len(new)
    assert second.counts["survey_answers"] == first.counts["survey_answers"] + len(new_answer_keys)
    assert second.keys == _expected_keys(runs.truth[1])
    # Full-table streams are reloaded and merged on their keys: nothing new.
    assert second.counts["surveys"] == first.counts["surveys"]
    assert second.counts["survey_questions"] == first.counts["survey_questions"]


def test_second_run_is_incremental_one_page_per_survey(runs: Scenario) -> None:
    # The new responses and the bookmarked one fit in one page of 100: from its
    # state the tap stops after the first page of every survey (empty ones too).
    assert runs.responses_requests_second_run == len(runs.truth[1].survey_ids)


def test_no_duplicate_keys_after_two_runs(runs: Scenario) -> None:
    for snapshot in runs.snapshots:
        assert snapshot.distinct == snapshot.counts


# ------------------------------------------------------------------ types


def test_postgres_column_types(postgres_runs: Scenario) -> None:
    types = postgres_runs.snapshots[0].types
    actual = {k: types.get(k) for k in PG_TYPES}
    assert actual == PG_TYPES


def test_postgres_timestamptz_recipe_converts_every_timestamp_and_survives_the_next_load(
    postgres_runs: Scenario,
) -> None:
    first, second = postgres_runs.snapshots
    converted = [k for k, v in first.types.items() if v == "timestamp without time zone"]
    assert ("survey_responses", "created_time") in converted
    assert ("survey_responses", "_sdc_extracted_at") in converted
    assert {k: second.types[k] for k in converted} == dict.fromkeys(converted, "timestamp with time zone")
    others = {k: v for k, v in first.types.items() if k not in converted}
    assert {k: second.types[k] for k in others} == others


def test_postgres_batch_mode_loads_files_with_the_same_column_types(
    postgres_runs: Scenario, postgres_batch_runs: Scenario
) -> None:
    assert postgres_batch_runs.snapshots[-1].types == postgres_runs.snapshots[0].types
    files = list((REPO_ROOT / ".meltano/run/tap-hotjar--batch/batches").glob("hotjar-run-*.json.gz"))
    # The last run wrote every stream's records into files (it loaded through them) ...
    assert {stream for stream in TABLES if any(f"-{stream}-" in f.name for f in files)} == set(TABLES)
    # ... and the first run's are still there: a run removes the files of ended runs only
    # an hour after they were written (tests/test_batch.py), the target may be reading them.
    assert len({f.name.split("-survey")[0] for f in files}) >= 2, sorted(f.name for f in files)[:5]


def test_duckdb_column_types(duckdb_runs: Scenario) -> None:
    types = duckdb_runs.snapshots[1].types
    actual = {k: types.get(k) for k in DUCKDB_TYPES}
    assert actual == DUCKDB_TYPES


def test_postgres_timestamps_are_the_api_instants(postgres_runs: Scenario, postgres_schema: str) -> None:
    # Every response: those converted by the recipe and those loaded after it.
    expected = {
        rid: dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
        for rid, created in postgres_runs.truth[1].response_created.items()
    }
    with pg_connect() as con:
        stored = dict(con.execute(f'select id, created_time from "{postgres_schema}".survey_responses').fetchall())
    assert all(v.tzinfo is not None for v in stored.values())
    assert stored == expected


# --------------------------------------------------------- privacy recipe


@pytest.fixture(scope="module")
def private_duckdb(meltano: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    workdir = tmp_path_factory.mktemp("e2e-private")
    db = workdir / "private.duckdb"
    with _simulator(seed=13) as sim:
        pipeline = Pipeline(
            meltano=meltano,
            sim=sim,
            workdir=workdir,
            target_env={"TARGET_DUCKDB_PATH": str(db)},
            extra_env={"HOTJAR_PII_SALT": PII_SALT},
        )
        pipeline.run("tap-hotjar--private", "target-duckdb")
        return db, ground_truth(sim)


def _all_text(db: Path) -> str:
    con = duckdb.connect(str(db), read_only=True)
    try:
        parts: list[str] = []
        for table, column in con.execute(
            "select table_name, column_name from information_schema.columns where table_schema = 'hotjar'"
        ).fetchall():
            rows = con.execute(f'select "{column}"::varchar from hotjar.{table}').fetchall()
            parts.extend(v for (v,) in rows if v is not None)
        return "\n".join(parts)
    finally:
        con.close()


def test_private_extractor_leaves_no_raw_email_in_the_warehouse(
    private_duckdb: tuple[Path, Truth],
) -> None:
    db, truth = private_duckdb
    assert truth.email_answers, "the simulator served no e-mail answers to test with"
    found = set(EMAIL_RE.findall(_all_text(db)))
    assert not found & truth.email_answers


def test_private_extractor_hashes_email_answers_with_the_salt(
    private_duckdb: tuple[Path, Truth],
) -> None:
    db, truth = private_duckdb
    con = duckdb.connect(str(db), read_only=True)
    try:
        stored = {
            (r, int(p)): a
            for r, p, a in con.execute(
                "select response_id, position, answer from hotjar.survey_answers where question_type = 'email'"
            ).fetchall()
        }
        total = con.execute("select count(*) from hotjar.survey_answers").fetchall()[0][0]
    finally:
        con.close()
    expected = {
        key: hashlib.sha256((PII_SALT + email.strip().lower()).encode()).hexdigest()
        for key, email in truth.email_answer_by_key.items()
    }
    assert {k: stored.get(k) for k in expected} == expected
    # Only the personal values changed: every answer is still there.
    assert total == len(truth.answer_keys)


def test_private_extractor_drops_user_attributes_and_raw_answer_lists(
    private_duckdb: tuple[Path, Truth],
) -> None:
    db, truth = private_duckdb
    con = duckdb.connect(str(db), read_only=True)
    try:
        columns = {
            c
            for (c,) in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'hotjar' and table_name = 'survey_responses'"
            ).fetchall()
        }
        responses = con.execute("select count(*) from hotjar.survey_responses").fetchall()[0][0]
    finally:
        con.close()
    assert "user_attributes" not in columns
    assert "answers" not in columns
    assert {"id", "created_time", "survey_id"} <= columns
    assert responses == len(truth.response_ids)


def test_meltano_project_has_no_network_settings_on() -> None:
    project = yaml.safe_load((Path(__file__).resolve().parent.parent / "meltano.yml").read_text())
    assert project["send_anonymous_usage_stats"] is False
    assert project["snowplow"]["collector_endpoints"] == []
    assert project["cli"]["disable_version_check"] is True
    for kind in ("extractors", "loaders"):
        for plugin in project["plugins"][kind]:
            # A namespace (or inherit_from) makes a plugin custom: no Hub lookup.
            assert plugin.get("namespace") or plugin.get("inherit_from"), plugin["name"]
    settings = project["plugins"]["extractors"][0]["settings"]
    secret = next(s for s in settings if s["name"] == "client_secret")
    assert secret.get("sensitive") is True


def test_meltano_yml_declares_what_the_tap_advertises(meltano: Path) -> None:
    about = json.loads(
        subprocess.run(
            [
                str(REPO_ROOT / ".meltano/extractors/tap-hotjar/venv/bin/tap-hotjar"),
                "--about",
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    )
    project = yaml.safe_load((REPO_ROOT / "meltano.yml").read_text())
    tap = next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-hotjar")
    assert sorted(tap["capabilities"]) == sorted(about["capabilities"])
    declared = {s["name"] for s in tap["settings"]}
    # faker_config only works with the faker extra, which the tap does not install.
    advertised = set(about["settings"]["properties"]) - {"faker_config"}
    assert declared == advertised
    for setting in tap["settings"]:
        assert setting.get("kind") and setting.get("label") and setting.get("description")
