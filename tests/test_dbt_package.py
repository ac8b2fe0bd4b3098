"""transform/ as a dbt package of somebody else's dbt project, on DuckDB and PostgreSQL.

The raw tables are loaded by the real pipeline from the simulator, and our own models
built beside them, in one `meltano run tap-hotjar target-X dbt-X:build` of this
repository's project (the utilities as they are: their settings reach the models through
the HOTJAR_* environment variables). Then a fresh dbt project of its own
(dbt_project.yml, profiles.yml, and a packages.yml that lists transform/ with `local:`)
runs `dbt deps` and `dbt --warn-error build` with the same dbt as our utilities, the
raw data named only by the package's vars, as docs/analytics.md says:

- DuckDB: the depending project writes its own file and attaches the loader's file
  read-only as `raw`: `hotjar_database: raw`, `hotjar_schema: hotjar`, and
  `hotjar_identity_attribute: customer_type` (an attribute that groups many
  responses). The models land in the target's schema.
- PostgreSQL: raw tables in a schema of their own; `hotjar_database` the target's
  database, `hotjar_schema` that schema; `models: hotjar: +schema: marts` puts the
  models in `<target schema>_marts`, as dbt names custom schemas.

The package's five marts must equal the marts computed in Python from the simulator's
data (tests/analytics_truth.py), and its NPS our own build's. Fresh PostgreSQL schemas,
dropped afterwards; outside CI the PostgreSQL half skips when the server is not
reachable, under CI=true it fails instead.
"""

from __future__ import annotations

import os
import re
import typing as t
from dataclasses import dataclass

import duckdb
import pytest
import yaml

from hotjar_simulator import HotjarSimulator
from tests.analytics_truth import Marts, compute_marts
from tests.e2e_helpers import (
    _SCRUBBED_PREFIXES,
    PG_DATABASE,
    PG_HOST,
    PG_PASSWORD,
    PG_PORT,
    PG_USER,
    REPO_ROOT,
    Pipeline,
    dbt_paths,
    pg_connect,
    pg_schema_prefix,
    postgres_env,
    run_checked,
)
from tests.test_analytics import MART_SQL, MARTS, _to_marts

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

DBT = {
    "duckdb": REPO_ROOT / ".meltano/utilities/dbt-duckdb/venv/bin/dbt",
    "postgres": REPO_ROOT / ".meltano/utilities/dbt-postgres/venv/bin/dbt",
}
_DONE = re.compile(r"Done\. PASS=(\d+) WARN=(\d+) ERROR=(\d+) SKIP=(\d+)")


@dataclass
class Built:
    package: Marts  # the depending project's marts
    truth: Marts  # the same marts from the simulator's data, with the package's vars
    own_nps: Marts  # hotjar__nps of our own build (meltano run ... dbt-X:build)
    summary: tuple[int, ...]  # the package build's PASS, WARN, ERROR, SKIP
    model_schemas: set[str]  # the schemas that hold hotjar__* tables
    expected_model_schemas: set[str]


def _simulator(seed: int) -> HotjarSimulator:
    return HotjarSimulator(seed=seed, sites=2, surveys_per_site=4, responses_per_survey=60).start()


def _write_dbt_project(path: Path, profile: dict, dbt_vars: dict, models: dict | None = None) -> Path:
    path.mkdir(parents=True)
    project: dict[str, t.Any] = {
        "name": "acme_analytics",
        "version": "1.0.0",
        "config-version": 2,
        "profile": "acme_analytics",
        # A root project's flags (the package's are ignored): offline, like every test.
        "flags": {"send_anonymous_usage_stats": False},
        "vars": dbt_vars,
    }
    if models:
        project["models"] = models
    (path / "dbt_project.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    profiles = {"acme_analytics": {"target": "dev", "outputs": {"dev": {**profile, "threads": 2}}}}
    (path / "profiles.yml").write_text(yaml.safe_dump(profiles, sort_keys=False))
    (path / "packages.yml").write_text(yaml.safe_dump({"packages": [{"local": str(REPO_ROOT / "transform")}]}))
    return path


def _dbt(adapter: str, project_dir: Path, *args: str) -> str:
    # Nothing from the caller's environment: above all not HOTJAR_SOURCE_SCHEMA or
    # HOTJAR_IDENTITY_ATTRIBUTE, the fallbacks of the vars under test.
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env |= {"DBT_USE_COLORS": "false", "NO_COLOR": "1"}
    command = [str(DBT[adapter]), *args, "--project-dir", str(project_dir), "--profiles-dir", str(project_dir)]
    return run_checked(command, cwd=project_dir, env=env)


def _build_package(adapter: str, project_dir: Path) -> tuple[int, ...]:
    _dbt(adapter, project_dir, "deps")
    # --warn-error: any warning about the package (a deprecation, a config that applies
    # to nothing, a data test that warns) fails the build.
    log = _dbt(adapter, project_dir, "--warn-error", "build")
    found = _DONE.findall(log)
    assert found, f"no dbt summary line:\n{log[-3000:]}"
    return tuple(int(x) for x in found[-1])


# ---------------------------------------------------------------- DuckDB


@pytest.fixture(scope="module")
def duckdb_built(meltano: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    workdir = tmp_path_factory.mktemp("dbt-package-duckdb")
    warehouse = workdir / "warehouse.duckdb"
    analytics = workdir / "acme.duckdb"
    identity = "customer_type"
    with _simulator(seed=51) as sim:
        Pipeline(
            meltano=meltano,
            sim=sim,
            workdir=workdir,
            target_env={"TARGET_DUCKDB_PATH": str(warehouse), "DBT_DUCKDB_PATH": str(warehouse)},
            extra_env=dbt_paths(workdir),
        ).run("tap-hotjar", "target-duckdb", "dbt-duckdb:build")
        truth = compute_marts(sim, identity_attribute=identity, empty_text_is_null=True)

    project = _write_dbt_project(
        workdir / "acme",
        # Its own file; the loader's file attached read-only (DuckDB's form of another database).
        {
            "type": "duckdb",
            "path": str(analytics),
            "schema": "analytics",
            "attach": [{"path": str(warehouse), "alias": "raw", "read_only": True}],
        },
        {"hotjar_database": "raw", "hotjar_schema": "hotjar", "hotjar_identity_attribute": identity},
    )
    summary = _build_package("duckdb", project)

    con = duckdb.connect(str(analytics), read_only=True)
    try:
        rows = {mart: con.execute(sql.format(schema="analytics")).fetchall() for mart, (_, sql) in MART_SQL.items()}
        schemas = {
            r[0]
            for r in con.execute(
                "select distinct table_schema from information_schema.tables"
                " where table_catalog = 'acme' and table_name like 'hotjar\\_\\_%' escape '\\'"
            ).fetchall()
        }
    finally:
        con.close()
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        own = con.execute(MART_SQL["hotjar__nps"][1].format(schema="hotjar_analytics")).fetchall()
    finally:
        con.close()
    # The depending project's file: the models in its target schema.
    return Built(_to_marts(rows), truth, _to_marts({"hotjar__nps": own}), summary, schemas, {"analytics"})


# ------------------------------------------------------------ PostgreSQL


@pytest.fixture(scope="module")
def pg_prefix() -> Iterator[str]:
    with pg_schema_prefix("e2e_dbtpkg") as prefix:
        yield prefix


@pytest.fixture(scope="module")
def postgres_built(meltano: Path, pg_prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Built:
    workdir = tmp_path_factory.mktemp("dbt-package-postgres")
    raw, own, package = f"{pg_prefix}_raw", f"{pg_prefix}_own", f"{pg_prefix}_acme"
    target_env = postgres_env(raw, own)
    with _simulator(seed=52) as sim:
        Pipeline(meltano=meltano, sim=sim, workdir=workdir, target_env=target_env, extra_env=dbt_paths(workdir)).run(
            "tap-hotjar", "target-postgres", "dbt-postgres:build"
        )
        truth = compute_marts(sim)

    project = _write_dbt_project(
        workdir / "acme",
        {
            "type": "postgres",
            "host": PG_HOST,
            "port": PG_PORT,
            "user": PG_USER,
            "password": PG_PASSWORD,
            "dbname": PG_DATABASE,
            "schema": package,
        },
        {"hotjar_database": PG_DATABASE, "hotjar_schema": raw, "hotjar_identity_attribute": "user_id"},
        models={"hotjar": {"+schema": "marts"}},
    )
    summary = _build_package("postgres", project)

    with pg_connect() as con:
        schemas = {
            r[0]
            for r in con.execute(
                "select distinct table_schema from information_schema.tables"
                " where table_schema like %s and table_name like 'hotjar\\_\\_%%'",
                [pg_prefix.replace("_", "\\_") + "%"],
            ).fetchall()
        }
        rows = {
            mart: con.execute(sql.format(schema=f'"{package}_marts"')).fetchall()  # type: ignore[arg-type]
            for mart, (_, sql) in MART_SQL.items()
        }
        own_nps = con.execute(MART_SQL["hotjar__nps"][1].format(schema=f'"{own}"')).fetchall()  # type: ignore[arg-type]
    # Ours in the utility's schema, the package's in the depending project's target schema
    # with the +schema suffix; none among the raw tables.
    expected = {own, f"{package}_marts"}
    return Built(_to_marts(rows), truth, _to_marts({"hotjar__nps": own_nps}), summary, schemas, expected)


@pytest.fixture(params=["duckdb", "postgres"])
def built(request: pytest.FixtureRequest) -> Built:
    return request.getfixturevalue(f"{request.param}_built")


# ------------------------------------------------------------------ tests


def test_package_finds_the_same_nps_as_our_own_build_and_the_simulators_data(built: Built) -> None:
    assert built.truth.nps, "no NPS answers in the simulator's data"
    assert built.package.nps == built.truth.nps
    assert built.own_nps.nps == built.package.nps


@pytest.mark.parametrize("mart", MARTS)
def test_every_mart_of_the_package_equals_the_simulators_data(built: Built, mart: str) -> None:
    expected = built.truth.as_dict()[mart]
    actual = built.package.as_dict()[mart]
    assert expected, f"nothing to compare in {mart}"
    assert actual.keys() == expected.keys()
    wrong = {k: (actual[k], expected[k]) for k in expected if actual[k] != expected[k]}
    assert not wrong, f"{len(wrong)} rows of {mart} differ, e.g. {next(iter(wrong.items()))}"


def test_package_build_runs_every_model_and_data_test_without_a_warning(built: Built) -> None:
    passed, warned, errors, skipped = built.summary
    # 9 models and their data tests, as in our own build (tests/test_analytics.py).
    assert passed >= 50
    assert warned == errors == skipped == 0


def test_models_land_in_the_depending_projects_target_schema_or_the_one_it_names(built: Built) -> None:
    assert built.model_schemas == built.expected_model_schemas


def test_identity_attribute_var_of_the_depending_project_regroups_respondents(duckdb_built: Built) -> None:
    respondents = duckdb_built.truth.respondents
    assert set(respondents) == {"enterprise", "smb", "free"}
    assert duckdb_built.package.respondents == respondents
