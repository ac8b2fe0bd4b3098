"""The dbt project in transform/, end to end: simulator -> Meltano -> warehouse -> dbt.

One scenario per database, each through `meltano run tap-hotjar target-X
dbt-X:build` as the README gives it, twice: a full run, then - after the
simulator received new responses - an incremental run from Meltano's state.

- DuckDB: the loader as configured (merging on the streams' keys).
- PostgreSQL: an append-only load (stream maps clear the streams' keys, so
  target-postgres appends every record it gets). The first run extracts and
  loads everything twice (`--full-refresh`, two tap/target pairs in one `meltano
  run`) before the models run; the README's timestamptz recipe runs between the
  two runs; the incremental run re-sends the response at each survey's bookmark,
  more copies.

After each run the five marts are read back and compared with the same marts
computed in Python from the simulator's data (tests/analytics_truth.py): NPS,
CSAT, counts, attributes and respondents. The incremental run must change them
by exactly the new responses; the doubled load must give what one load gives.

PostgreSQL: raw and model schemas of their own, dropped afterwards. Outside CI
the PostgreSQL scenario skips when the server is not reachable; under CI=true it
fails instead.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
import pytest
import yaml

from hotjar_simulator import HotjarSimulator
from tests.analytics_truth import Marts, compute_marts, rounded
from tests.e2e_helpers import (
    PG_DATABASE,
    PG_HOST,
    PG_PASSWORD,
    PG_PORT,
    PG_USER,
    PIPELINE_TIMEOUT_S,
    REPO_ROOT,
    TABLES,
    Pipeline,
    add_responses_everywhere,
    dbt_paths,
    pg_connect,
    pg_schema_prefix,
    postgres_env,
)
from tests.reconcile_helpers import Deletions, delete_in_hotjar, minus, truth

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

NEW_PER_SURVEY = 6
REGROUP_ATTRIBUTE = "customer_type"
STREAMS = ("surveys", "survey_questions", "survey_responses", "survey_answers")
MARTS = (
    "hotjar__answers",
    "hotjar__nps",
    "hotjar__ratings",
    "hotjar__response_attributes",
    "hotjar__respondents",
)
# The columns compared with the independent computation, key columns first.
MART_SQL = {
    "hotjar__answers": (
        2,
        "select response_id, position, survey_id, question_id, question_type, answer, score,"
        " hotjar_user_id, identified_user_id from {schema}.hotjar__answers",
    ),
    "hotjar__nps": (
        3,
        "select survey_id, question_id, week_start, responses, promoters, passives, detractors,"
        " nps from {schema}.hotjar__nps",
    ),
    "hotjar__ratings": (
        3,
        "select survey_id, question_id, week_start, question_type, responses, avg_score,"
        " top_box_responses, top_box_share from {schema}.hotjar__ratings",
    ),
    "hotjar__response_attributes": (
        2,
        "select response_id, name, value from {schema}.hotjar__response_attributes",
    ),
    "hotjar__respondents": (
        1,
        "select identified_user_id, hotjar_user_ids, first_response_time, last_response_time,"
        " responses, surveys_answered, attributes from {schema}.hotjar__respondents",
    ),
}
# Keys of the raw rows marked deleted (every copy of an append-only load counts once).
_MARKED_SQL = {
    "surveys": "select distinct id from {schema}.surveys where _sdc_deleted_at is not null",
    "survey_questions": (
        "select distinct survey_id, id from {schema}.survey_questions where _sdc_deleted_at is not null"
    ),
    "survey_responses": "select distinct id from {schema}.survey_responses where _sdc_deleted_at is not null",
    "survey_answers": (
        "select distinct response_id, position from {schema}.survey_answers where _sdc_deleted_at is not null"
    ),
}
# Columns holding numbers that SQL divides or averages, or JSON.
_ROUNDED = {"hotjar__answers": {4}, "hotjar__nps": {4}, "hotjar__ratings": {2, 4}}
_JSON = {"hotjar__respondents": {0, 5}}


def _simulator(seed: int) -> HotjarSimulator:
    # Small, but every question type, empty surveys and an empty site included.
    return HotjarSimulator(seed=seed, sites=2, surveys_per_site=4, responses_per_survey=60).start()


def _to_marts(rows_by_mart: dict[str, list[tuple]]) -> Marts:
    out: dict[str, dict] = {}
    for mart, rows in rows_by_mart.items():
        key_len = MART_SQL[mart][0]
        table: dict = {}
        for row in rows:
            values = list(row[key_len:])
            for i in _ROUNDED.get(mart, ()):
                values[i] = rounded(values[i])
            for i in _JSON.get(mart, ()):
                if isinstance(values[i], str):
                    values[i] = json.loads(values[i])
            if mart == "hotjar__respondents":
                values[0] = sorted(values[0])  # its order follows the database's collation
            key = row[0] if key_len == 1 else tuple(row[:key_len])
            if mart == "hotjar__answers":
                key = (key[0], int(key[1]))
            table[key] = values[0] if len(values) == 1 else tuple(values)
        out[mart] = table
    return Marts(
        answers=out.get("hotjar__answers", {}),
        nps=out.get("hotjar__nps", {}),
        ratings=out.get("hotjar__ratings", {}),
        response_attributes=out.get("hotjar__response_attributes", {}),
        respondents=out.get("hotjar__respondents", {}),
    )


@dataclass
class Run:
    marts: Marts
    truth: Marts
    raw_responses: int
    raw_distinct_responses: int
    dbt_summary: dict[str, int]


@dataclass
class Scenario:
    runs: list[Run] = field(default_factory=list)
    new_responses: Marts | None = None  # the marts of the new responses alone
    new_response_count: int = 0
    # The third run, the reconciliation job: what was deleted in Hotjar before it, and
    # the keys it left marked deleted in the raw tables; the nightly state around it.
    deletions: Deletions | None = None
    marked: dict[str, set[tuple]] = field(default_factory=dict)
    gone: dict[str, set[tuple]] = field(default_factory=dict)
    nightly_state: tuple[dict, dict] | None = None
    # hotjar__respondents rebuilt with another identity attribute, and its truth.
    regrouped: tuple[dict, dict] | None = None


_DONE = re.compile(r"Done\. PASS=(\d+) WARN=(\d+) ERROR=(\d+) SKIP=(\d+)")


def _dbt_summary(log: str) -> dict[str, int]:
    found = _DONE.findall(log)
    assert found, "no dbt summary line in the log"
    passed, warned, errors, skipped = (int(x) for x in found[-1])
    return {"pass": passed, "warn": warned, "error": errors, "skip": skipped}


def _run_scenario(
    pipeline: Pipeline,
    first_run: tuple[str, ...],
    second_run: tuple[str, ...],
    read: Callable[[], tuple[dict[str, list[tuple]], int, int]],
    reconcile: tuple[str, Callable[[], dict[str, set[tuple]]], str],
    between: Callable[[], None] | None = None,
    empty_text_is_null: bool = False,
) -> Scenario:
    """Three runs: full, incremental, and the reconciliation job after deletions in Hotjar.

    `reconcile` is (the job, a reader of the raw tables' marked keys, the nightly state id).
    """
    scenario = Scenario()
    sim = pipeline.sim

    def run(*args: str) -> None:
        log = pipeline.run(*args)
        rows, raw, distinct = read()
        truth = compute_marts(sim, empty_text_is_null=empty_text_is_null)
        scenario.runs.append(Run(_to_marts(rows), truth, raw, distinct, _dbt_summary(log)))

    run(*first_run)
    if between is not None:
        between()
    added = add_responses_everywhere(sim, NEW_PER_SURVEY)
    scenario.new_response_count = len(added)
    scenario.new_responses = compute_marts(sim, only={r["id"] for r in added}, empty_text_is_null=empty_text_is_null)
    run(*second_run)

    job, read_marked, nightly_state_id = reconcile
    nightly = pipeline.state(nightly_state_id)
    before = truth(sim)
    scenario.deletions = delete_in_hotjar(sim)
    scenario.gone = minus(before, truth(sim))
    # The run's evidence file, in the scenario's folder: the tap writes it, hotjar-reconcile reads it.
    evidence = str(pipeline.workdir / "reconcile" / "evidence.json")
    pipeline.extra_env |= {
        "TAP_HOTJAR__RECONCILE_RECONCILE_EVIDENCE_PATH": evidence,
        "HOTJAR_RECONCILE_EVIDENCE": evidence,
    }
    run(job)
    scenario.marked = read_marked()
    scenario.nightly_state = (nightly, pipeline.state(nightly_state_id))
    return scenario


# ---------------------------------------------------------------- DuckDB


@pytest.fixture(scope="module")
def duckdb_scenario(meltano: Path, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    workdir = tmp_path_factory.mktemp("analytics-duckdb")
    db = workdir / "warehouse.duckdb"

    def read() -> tuple[dict[str, list[tuple]], int, int]:
        con = duckdb.connect(str(db), read_only=True)
        try:
            rows = {
                mart: con.execute(sql.format(schema="hotjar_analytics")).fetchall()
                for mart, (_, sql) in MART_SQL.items()
            }
            raw, distinct = con.execute("select count(*), count(distinct id) from hotjar.survey_responses").fetchall()[
                0
            ]
        finally:
            con.close()
        return rows, raw, distinct

    with _simulator(seed=31) as sim:
        pipeline = Pipeline(
            meltano=meltano,
            sim=sim,
            workdir=workdir,
            target_env={"TARGET_DUCKDB_PATH": str(db), "DBT_DUCKDB_PATH": str(db)},
            extra_env=dbt_paths(workdir),
        )
        blocks = ("tap-hotjar", "target-duckdb", "dbt-duckdb:build")
        pipeline.target_env["HOTJAR_RECONCILE_DUCKDB_URL"] = f"duckdb://{db}"

        def marked() -> dict[str, set[tuple]]:
            con = duckdb.connect(str(db), read_only=True)
            try:
                return {t: set(con.execute(_MARKED_SQL[t].format(schema="hotjar")).fetchall()) for t in TABLES}
            finally:
                con.close()

        reconcile = ("hotjar-reconcile-duckdb", marked, "dev:tap-hotjar-to-target-duckdb")
        scenario = _run_scenario(pipeline, blocks, blocks, read, reconcile, empty_text_is_null=True)

        # The identity attribute is a setting: customer_type groups many responses
        # (and Hotjar users) per "user", which user_id in the simulator's data does not.
        subprocess.run(
            pipeline.meltano_cmd("invoke", "dbt-duckdb:run", "--select", "hotjar__respondents"),
            cwd=REPO_ROOT,
            env={**pipeline.env(), "DBT_DUCKDB_IDENTITY_ATTRIBUTE": REGROUP_ATTRIBUTE},
            capture_output=True,
            timeout=PIPELINE_TIMEOUT_S,
            check=True,
        )
        rows, _, _ = read()
        truth = compute_marts(sim, identity_attribute=REGROUP_ATTRIBUTE, empty_text_is_null=True)
        regrouped = _to_marts({"hotjar__respondents": rows["hotjar__respondents"]})
        scenario.regrouped = (regrouped.respondents, truth.respondents)
        return scenario


# ------------------------------------------------------------ PostgreSQL


@pytest.fixture(scope="module")
def postgres_schemas() -> Iterator[tuple[str, str]]:
    with pg_schema_prefix("e2e_analytics") as raw:
        yield raw, f"{raw}_marts"


@pytest.fixture(scope="module")
def postgres_scenario(
    meltano: Path, postgres_schemas: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Scenario:
    raw, models = postgres_schemas
    workdir = tmp_path_factory.mktemp("analytics-postgres")

    def read() -> tuple[dict[str, list[tuple]], int, int]:
        with pg_connect() as con:
            rows = {
                mart: con.execute(sql.format(schema=f'"{models}"')).fetchall()  # type: ignore[arg-type]
                for mart, (_, sql) in MART_SQL.items()
            }
            raw_count, distinct = con.execute(
                f'select count(*), count(distinct id) from "{raw}".survey_responses'  # type: ignore[arg-type]
            ).fetchall()[0]
        return rows, raw_count, distinct

    def timestamptz_recipe() -> None:
        sql = (REPO_ROOT / "scripts" / "postgres_timestamptz.sql").read_text()
        with pg_connect() as con:
            con.execute("select set_config('tap_hotjar.schema', %s, false)", [raw])
            con.execute(sql)  # type: ignore[arg-type]

    target_env = postgres_env(raw, models)
    target_env |= {
        "HOTJAR_RECONCILE_POSTGRES_URL": f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DATABASE}",
        "HOTJAR_RECONCILE_RAW_SCHEMA": raw,
        "HOTJAR_RECONCILE_MODELS_SCHEMA": models,
    }
    if PG_PASSWORD:
        target_env["PGPASSWORD"] = PG_PASSWORD

    def marked() -> dict[str, set[tuple]]:
        with pg_connect() as con:
            return {t: set(con.execute(_MARKED_SQL[t].format(schema=f'"{raw}"')).fetchall()) for t in TABLES}  # type: ignore[arg-type]

    # No key properties: target-postgres then appends every record it receives.
    append_only: dict[str, dict] = {stream: {"__key_properties__": []} for stream in STREAMS}
    el = ("tap-hotjar", "target-postgres")
    with _simulator(seed=32) as sim:
        pipeline = Pipeline(
            meltano=meltano,
            sim=sim,
            workdir=workdir,
            target_env=target_env,
            extra_env={"TAP_HOTJAR_STREAM_MAPS": json.dumps(append_only), **dbt_paths(workdir)},
        )
        return _run_scenario(
            pipeline,
            ("--full-refresh", *el, *el, "dbt-postgres:build"),
            (*el, "dbt-postgres:build"),
            read,
            ("hotjar-reconcile-postgres", marked, "dev:tap-hotjar-to-target-postgres"),
            between=timestamptz_recipe,
        )


@pytest.fixture(params=["duckdb", "postgres"])
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return request.getfixturevalue(f"{request.param}_scenario")


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("mart", MARTS)
def test_marts_equal_the_simulators_data_after_full_and_incremental_runs(scenario: Scenario, mart: str) -> None:
    for number, run in enumerate(scenario.runs, start=1):
        expected = run.truth.as_dict()[mart]
        assert expected, f"run {number}: nothing to compare in {mart}"
        actual = run.marts.as_dict()[mart]
        assert actual.keys() == expected.keys(), f"run {number}: {mart} keys"
        wrong = {k: (actual[k], expected[k]) for k in expected if actual[k] != expected[k]}
        assert not wrong, f"run {number}: {len(wrong)} rows of {mart} differ, e.g. {next(iter(wrong.items()))}"


def test_dbt_build_ran_its_data_tests_and_all_passed(scenario: Scenario) -> None:
    for run in scenario.runs:
        # 9 models and their data tests (unique, not_null, relationships,
        # accepted_values, the NPS/ratings checks): a lower count means tests
        # were dropped from the project.
        assert run.dbt_summary["pass"] >= 50
        assert run.dbt_summary["warn"] == run.dbt_summary["error"] == run.dbt_summary["skip"] == 0


def _count_difference(after: dict, before: dict, counted: Callable[[tuple], tuple]) -> dict:
    out = {}
    for key, value in after.items():
        old = counted(before[key]) if key in before else tuple(0 for _ in counted(value))
        delta = tuple(a - b for a, b in zip(counted(value), old, strict=True))
        if any(delta):
            out[key] = delta
    return out


def test_reconciliation_job_marks_what_hotjar_deleted_and_leaves_it_out_of_every_model(scenario: Scenario) -> None:
    # The job loaded everything again, marked exactly what Hotjar no longer has in the
    # raw tables, and rebuilt the models, which then equal the simulator's data (above:
    # run 3); its dbt tests include assert_no_deleted_response_in_marts.
    deletions = scenario.deletions
    assert deletions is not None
    assert scenario.marked == scenario.gone
    assert (deletions.gone_survey,) in scenario.marked["surveys"] and deletions.question in scenario.marked[
        "survey_questions"
    ]
    reconciled = scenario.runs[2].marts
    gone_ids = {r for (r,) in scenario.gone["survey_responses"]}
    assert gone_ids and not gone_ids & {k[0] for k in reconciled.answers}
    assert not gone_ids & {k[0] for k in reconciled.response_attributes}
    assert not {k[0] for k in reconciled.nps} & {deletions.gone_survey}
    # The nightly pipeline's state is its own: the reconciliation left it as it was.
    assert scenario.nightly_state is not None
    before, after = scenario.nightly_state
    assert before == after and before["singer_state"]["bookmarks"]["survey_responses"]["partitions"]


def test_incremental_run_changes_the_marts_by_exactly_the_new_responses(scenario: Scenario) -> None:
    first, second = scenario.runs[0].marts, scenario.runs[1].marts
    new = scenario.new_responses
    assert new is not None and new.answers

    assert second.answers.keys() - first.answers.keys() == new.answers.keys()
    assert {k: second.answers[k] for k in first.answers} == first.answers
    assert second.response_attributes.keys() - first.response_attributes.keys() == new.response_attributes.keys()
    # NPS counts per survey, question and week grow by the new answers' counts.
    nps_counts = lambda row: row[:4]  # noqa: E731 - responses, promoters, passives, detractors
    assert _count_difference(second.nps, first.nps, nps_counts) == {k: nps_counts(v) for k, v in new.nps.items()}
    rating_counts = lambda row: (row[1], row[3])  # noqa: E731 - responses, top-box responses
    assert _count_difference(second.ratings, first.ratings, rating_counts) == {
        k: rating_counts(v) for k, v in new.ratings.items()
    }
    untouched = first.nps.keys() - new.nps.keys()
    assert {k: second.nps[k] for k in untouched} == {k: first.nps[k] for k in untouched}


def test_append_only_load_with_every_response_twice_gives_the_marts_of_one_load(
    postgres_scenario: Scenario,
) -> None:
    doubled, incremental = postgres_scenario.runs[:2]
    assert doubled.raw_responses == 2 * doubled.raw_distinct_responses
    assert doubled.marts == doubled.truth
    # More copies: the incremental run also re-sent each survey's bookmarked response.
    new = postgres_scenario.new_response_count
    assert incremental.raw_distinct_responses == doubled.raw_distinct_responses + new
    assert incremental.raw_responses > doubled.raw_responses + new
    assert incremental.marts == incremental.truth


# ------------------------------------------------------- project definition


def _plugins(kind: str) -> dict[str, dict]:
    project = yaml.safe_load((REPO_ROOT / "meltano.yml").read_text())
    return {p["name"]: p for p in project["plugins"][kind]}


def _pins(pip_url: str) -> dict[str, str]:
    pins = {}
    for requirement in pip_url.split():
        name, sep, version = requirement.partition("==")
        assert sep, f"{requirement!r} is not pinned to one version"
        pins[name.lower()] = version
    return pins


def test_dbt_utilities_are_inline_and_pinned_to_what_installs_from_the_package_index() -> None:
    utilities = _plugins("utilities")
    assert {"dbt-duckdb", "dbt-postgres"} <= utilities.keys()
    for name in ("dbt-duckdb", "dbt-postgres"):
        utility = utilities[name]
        # A namespace makes the plugin custom: Meltano never asks the Hub.
        assert utility.get("namespace"), name
        pins = _pins(utility["pip_url"])
        # dbt-core 1.12 downloads a file from outside the index while installing.
        assert pins["dbt-core"].startswith("1.11."), name
        assert "meltano-dbt-ext" in pins, name
    # One DuckDB storage format for the loader and dbt: a newer duckdb in dbt
    # would convert the file into one target-duckdb can never open again.
    loader_pins = _pins(_plugins("loaders")["target-duckdb"]["pip_url"])
    assert _pins(utilities["dbt-duckdb"]["pip_url"])["duckdb"] == loader_pins["duckdb"]


def test_dbt_project_needs_nothing_from_the_dbt_hub() -> None:
    transform = REPO_ROOT / "transform"
    assert not (transform / "packages.yml").exists()
    assert not (transform / "dependencies.yml").exists()
    project = yaml.safe_load((transform / "dbt_project.yml").read_text())
    assert project["flags"]["send_anonymous_usage_stats"] is False


def test_identity_attribute_setting_regroups_respondents(duckdb_scenario: Scenario) -> None:
    assert duckdb_scenario.regrouped is not None
    actual, expected = duckdb_scenario.regrouped
    assert set(expected) == {"enterprise", "smb", "free"}
    # Several responses, Hotjar users and surveys per identified user: the
    # aggregation and "latest value of each attribute" have something to do.
    assert all(row[3] > 1 and len(row[0]) > 1 for row in expected.values())
    assert actual == expected
