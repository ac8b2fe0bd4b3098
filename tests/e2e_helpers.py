"""Helpers for the end-to-end tests that run the real pipeline through Meltano.

Meltano runs as a subprocess from its own virtualenv (scripts/_meltano_env.sh
installs it once), against this checkout's meltano.yml, with the plugin
virtualenvs under .meltano/ shared by every test and by scripts/demo.sh. Each
scenario gets its own Meltano system database (so its own state), its own
simulator, and its own warehouse (a PostgreSQL schema or a DuckDB file).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
import time
import typing as t
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    import psycopg

    from hotjar_simulator import HotjarSimulator

REPO_ROOT = Path(__file__).resolve().parent.parent
MELTANO_ENV_SCRIPT = REPO_ROOT / "scripts" / "_meltano_env.sh"

STREAM_KEYS: dict[str, tuple[str, ...]] = {
    "surveys": ("id",),
    "survey_questions": ("survey_id", "id"),
    "survey_responses": ("id",),
    "survey_answers": ("response_id", "position"),
}
TABLES = tuple(STREAM_KEYS)

PG_HOST = os.environ.get("E2E_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("E2E_PG_PORT", "5432"))
PG_USER = os.environ.get("E2E_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("E2E_PG_PASSWORD", "")
PG_DATABASE = os.environ.get("E2E_PG_DATABASE", "test")

# Variables from the caller's shell that would change what Meltano or the
# plugins do; each scenario sets the ones it needs.
_SCRUBBED_PREFIXES = (
    "MELTANO_",
    "TAP_HOTJAR",
    "TARGET_POSTGRES_",
    "TARGET_DUCKDB_",
    "HOTJAR_",
    "DBT_",
)

PIPELINE_TIMEOUT_S = 300


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def pg_connect() -> psycopg.Connection:
    """An autocommit connection to the tests' PostgreSQL server."""
    import psycopg  # noqa: PLC0415 - only the tests that use PostgreSQL need it

    return psycopg.connect(
        host=PG_HOST,
        port=PG_PORT,
        user=PG_USER,
        password=PG_PASSWORD or None,
        dbname=PG_DATABASE,
        connect_timeout=5,
        autocommit=True,
    )


@contextlib.contextmanager
def pg_schema_prefix(name: str) -> Iterator[str]:
    """A fresh schema name (`<name>_<random>`) on the tests' server; afterwards every
    schema whose name starts with it is dropped, so a scenario may make several
    (`<prefix>_marts`, ...). Outside CI the test skips when the server is not
    reachable; under CI=true it fails instead."""
    try:
        with pg_connect():
            pass
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        reason = f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT} as {PG_USER}/{PG_DATABASE}: {exc}"
        if in_ci():
            pytest.fail(f"{reason} (CI=true: the end-to-end tests must run)")
        pytest.skip(reason)
    prefix = f"{name}_{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        with pg_connect() as con:
            like = prefix.replace("_", "\\_") + "%"
            for (schema,) in con.execute("select nspname from pg_namespace where nspname like %s", [like]).fetchall():
                con.execute(f'drop schema if exists "{schema}" cascade')  # type: ignore[arg-type]


def run_checked(args: list[str], *, cwd: Path, env: dict[str, str]) -> str:
    """Run a command to its end; its output (stdout, then stderr), or a failed assertion with its tail."""
    proc = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=PIPELINE_TIMEOUT_S, check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, (
        f"{Path(args[0]).name} {' '.join(args[1:])} exited {proc.returncode}:\n{output[-6000:]}"
    )
    return output


def postgres_env(raw: str, models: str | None = None) -> dict[str, str]:
    """Meltano's settings (as variables) for target-postgres to load the tests' server's schema
    `raw`, and, given `models`, for dbt-postgres to build from it into schema `models`."""
    connection = {"HOST": PG_HOST, "PORT": str(PG_PORT), "USER": PG_USER, "PASSWORD": PG_PASSWORD}
    env = {f"TARGET_POSTGRES_{k}": v for k, v in connection.items()}
    env |= {"TARGET_POSTGRES_DATABASE": PG_DATABASE, "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": raw}
    if models is not None:
        env |= {f"DBT_POSTGRES_{k}": v for k, v in connection.items()}
        env |= {"DBT_POSTGRES_DBNAME": PG_DATABASE, "DBT_POSTGRES_SOURCE_SCHEMA": raw, "DBT_POSTGRES_SCHEMA": models}
    return env


def dbt_paths(workdir: Path) -> dict[str, str]:
    """dbt's target/ and logs/ in a scenario's folder, not in the checkout's transform/."""
    return {"DBT_TARGET_PATH": str(workdir / "dbt-target"), "DBT_LOG_PATH": str(workdir / "dbt-logs")}


@contextlib.contextmanager
def _project_lock(name: str) -> t.Iterator[None]:
    (REPO_ROOT / ".meltano").mkdir(exist_ok=True)
    with open(REPO_ROOT / ".meltano" / f"tests-{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install_lock() -> t.ContextManager[None]:
    """One installer at a time: test files run in parallel (pytest-xdist) share .meltano/."""
    return _project_lock("install")


# The plugin types whose virtualenvs the tests install once, in the project's .meltano/.
_PLUGIN_DIRS = ("extractors", "loaders", "utilities")


def sys_dir(workdir: Path) -> Path:
    """A Meltano system directory (MELTANO_SYS_DIR_ROOT) of this scenario's own.

    Meltano keeps a plugin's run files (config, catalog, state) in .meltano/run/<plugin>/,
    so two runs of one plugin at once in one project overwrite each other's. Test files
    run side by side (xdist); each scenario's runs get their own run/ here, and share the
    plugins' virtualenvs (installed once by install_plugins) through links.
    """
    root = workdir / "meltano-sys"
    if not root.is_dir():
        root.mkdir(parents=True)
        for kind in _PLUGIN_DIRS:
            shared = REPO_ROOT / ".meltano" / kind
            shared.mkdir(parents=True, exist_ok=True)
            (root / kind).symlink_to(shared, target_is_directory=True)
    return root


def ensure_meltano() -> Path:
    """Install Meltano (once) the way scripts/demo.sh does; return its executable."""
    with install_lock():
        return _ensure_meltano()


def _ensure_meltano() -> Path:
    proc = subprocess.run(
        ["bash", "-c", f'source "{MELTANO_ENV_SCRIPT}" >&2 && command -v meltano'],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        msg = f"could not set up Meltano:\n{proc.stderr[-3000:]}"
        raise RuntimeError(msg)
    return Path(proc.stdout.strip())


def base_env(system_db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env.update(
        MELTANO_PROJECT_ROOT=str(REPO_ROOT),
        MELTANO_DATABASE_URI=f"sqlite:///{system_db}",
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_CLI_DISABLE_VERSION_CHECK="1",
        MELTANO_CLI_LOG_FORMAT="uncolored",
        NO_COLOR="1",
    )
    return env


# The plugins of meltano.yml the tests run, and where Meltano puts each one's virtualenv.
PLUGIN_VENVS = {
    "tap-hotjar": REPO_ROOT / ".meltano/extractors/tap-hotjar/venv",
    "target-postgres": REPO_ROOT / ".meltano/loaders/target-postgres/venv",
    "target-duckdb": REPO_ROOT / ".meltano/loaders/target-duckdb/venv",
    "dbt-duckdb": REPO_ROOT / ".meltano/utilities/dbt-duckdb/venv",
    "dbt-postgres": REPO_ROOT / ".meltano/utilities/dbt-postgres/venv",
    "hotjar-report": REPO_ROOT / ".meltano/utilities/hotjar-report/venv",
}


def install_plugins(meltano: Path, plugins: t.Iterable[str], workdir: Path) -> None:
    """Install the plugins whose virtualenv is missing; keep existing ones.

    `meltano run` re-installs a plugin by itself when its pip_url changed, so an
    existing virtualenv is always safe to reuse.
    """
    with install_lock():
        missing = [p for p in plugins if not (PLUGIN_VENVS[p] / "bin").is_dir()]
        if missing:
            _install(meltano, missing, workdir)


def _install(meltano: Path, missing: list[str], workdir: Path) -> None:
    proc = subprocess.run(
        [str(meltano), "install", *missing],
        cwd=REPO_ROOT,
        # Bytecode at install, as scripts/_meltano_env.sh asks (see there).
        env={**base_env(workdir / "install.db"), "UV_COMPILE_BYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        output = f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        msg = f"meltano install {' '.join(missing)} failed:\n{output}"
        raise RuntimeError(msg)


@dataclass
class Pipeline:
    """One scenario: a simulator, a Meltano system database and a target config."""

    meltano: Path
    sim: HotjarSimulator
    workdir: Path
    target_env: dict[str, str]
    extra_env: dict[str, str] = field(default_factory=dict)
    runs: list[float] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = base_env(self.workdir / "meltano.db")
        env["MELTANO_SYS_DIR_ROOT"] = str(sys_dir(self.workdir))
        cfg = self.sim.config()
        env.update(
            TAP_HOTJAR_API_URL=cfg["api_url"],
            TAP_HOTJAR_CLIENT_ID=cfg["client_id"],
            TAP_HOTJAR_CLIENT_SECRET=cfg["client_secret"],
            TAP_HOTJAR_SITE_IDS=json.dumps(cfg["site_ids"]),
        )
        env.update(self.target_env)
        env.update(self.extra_env)
        return env

    def meltano_cmd(self, *args: str) -> list[str]:
        # An empty env file: a developer's .env (real credentials, another
        # database) must not leak into the tests.
        env_file = self.workdir / "empty.env"
        env_file.touch()
        return [str(self.meltano), "--env-file", str(env_file), *args]

    def run(self, *blocks: str) -> str:
        """`meltano run BLOCKS...`; returns the combined log, fails with its tail."""
        log_path = self.workdir / f"run-{len(self.runs) + 1}.log"
        start = time.monotonic()
        with log_path.open("w") as log:
            proc = subprocess.run(
                self.meltano_cmd("run", *blocks),
                cwd=REPO_ROOT,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=PIPELINE_TIMEOUT_S,
                check=False,
            )
        self.runs.append(time.monotonic() - start)
        text = log_path.read_text(errors="replace")
        if proc.returncode != 0:
            command = f"meltano run {' '.join(blocks)}"
            msg = f"{command} exited {proc.returncode}; log {log_path}:\n{text[-6000:]}"
            raise AssertionError(msg)
        return text

    def state(self, state_id: str) -> dict:
        proc = subprocess.run(
            self.meltano_cmd("state", "get", state_id),
            cwd=REPO_ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return json.loads(proc.stdout)


# --------------------------------------------------------------- ground truth


@dataclass
class Truth:
    """What the simulator serves, in the shape of the tap's four streams."""

    survey_ids: set[str]
    question_keys: set[tuple[str, str]]
    response_ids: set[str]
    answer_keys: set[tuple[str, int]]
    email_answers: set[str]
    user_attribute_values: set[str]
    email_answer_by_key: dict[tuple[str, int], str]
    response_created: dict[str, str]

    def counts(self) -> dict[str, int]:
        return {
            "surveys": len(self.survey_ids),
            "survey_questions": len(self.question_keys),
            "survey_responses": len(self.response_ids),
            "survey_answers": len(self.answer_keys),
        }


def ground_truth(sim: HotjarSimulator) -> Truth:
    truth = Truth(set(), set(), set(), set(), set(), set(), {}, {})
    for site_id in sim.site_ids:
        for survey in sim.surveys(site_id):
            truth.survey_ids.add(survey["id"])
            questions = survey.get("questions") or []
            types = {q["id"]: q.get("type") for q in questions}
            truth.question_keys.update((survey["id"], q["id"]) for q in questions)
            for response in sim.responses(site_id, survey["id"]):
                truth.response_ids.add(response["id"])
                truth.response_created[response["id"]] = response["created_time"]
                for position, answer in enumerate(response.get("answers") or []):
                    key = (response["id"], position)
                    truth.answer_keys.add(key)
                    if types.get(answer.get("question_id")) == "email" and answer.get("answer"):
                        truth.email_answers.add(answer["answer"])
                        truth.email_answer_by_key[key] = answer["answer"]
                for attribute in response.get("user_attributes") or []:
                    if isinstance(attribute.get("value"), str) and len(attribute["value"]) > 3:
                        truth.user_attribute_values.add(attribute["value"])
    return truth


def add_responses_everywhere(sim: HotjarSimulator, per_survey: int) -> list[dict]:
    """Add responses to every survey that has some; returns the new responses."""
    added: list[dict] = []
    for site_id in sim.site_ids:
        for survey in sim.surveys(site_id):
            if sim.responses(site_id, survey["id"]):
                added.extend(sim.add_responses(site_id, survey["id"], per_survey))
    return added


EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
