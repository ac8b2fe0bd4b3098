"""A newcomer's Meltano project adds the extractor from the Hub definition and runs it.

As the README's "Use with Meltano" says: `meltano init`, then `meltano add tap-hotjar
--from-ref <meltano-hub/extractors/tap-hotjar/tap-hotjar.yml>` (a local path: the
Meltano Hub itself is not reachable here, and --from-ref needs it not), with the
file's pip_url pointed at this checkout instead of the repository, as a user installing
an unreleased version would; target-duckdb added the same way from a definition written
from our meltano.yml's. Then `meltano run tap-hotjar target-duckdb` against the
simulator loads every row it serves, and the `user-lookup` command reaches its API.

Nothing of this checkout's Meltano project is used: the fresh project has its own
.meltano/ (system database, state, plugin virtualenvs). Installs are fast because uv
(Meltano's installer here) reuses its cache of wheels.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import typing as t

import duckdb
import pytest
import yaml

from hotjar_simulator import HotjarSimulator
from tests.e2e_helpers import (
    _SCRUBBED_PREFIXES,
    REPO_ROOT,
    STREAM_KEYS,
    ensure_meltano,
    ground_truth,
    run_checked,
)
from tests.plugin_definitions import HUB_FILE, REPO_URL, differences, hub_definition, project_plugin

if t.TYPE_CHECKING:
    from pathlib import Path


class FreshProject:
    def __init__(self, meltano: Path, root: Path) -> None:
        self.meltano = meltano
        self.root = root

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        # Nothing from the caller's shell that would change Meltano or the plugins, and
        # nothing that points at this checkout's project.
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
        env.update(
            MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
            MELTANO_CLI_DISABLE_VERSION_CHECK="1",
            MELTANO_CLI_LOG_FORMAT="uncolored",
            NO_COLOR="1",
        )
        env.update(extra or {})
        return env

    def meltano_run(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
        return run_checked([str(self.meltano), *args], cwd=cwd or self.root, env=self.env(env))

    @property
    def project_file(self) -> Path:
        return self.root / "meltano.yml"

    def set_pip_url(self, kind: str, name: str, pip_url: str) -> None:
        project = yaml.safe_load(self.project_file.read_text())
        (plugin,) = (p for p in project["plugins"][kind] if p["name"] == name)
        plugin["pip_url"] = pip_url
        self.project_file.write_text(yaml.safe_dump(project, sort_keys=False))


def _checkout_pip_url() -> str:
    """The Hub file's pip_url, with this checkout in place of the repository's URL."""
    pip_url = hub_definition()["pip_url"]
    repository = f"git+{REPO_URL}.git"
    assert repository in pip_url
    return pip_url.replace(repository, REPO_ROOT.as_uri())


def _target_duckdb_definition(path: Path) -> Path:
    """target-duckdb as our meltano.yml defines it (pinned), as a definition file: no Hub."""
    definition = project_plugin(REPO_ROOT / "meltano.yml", "target-duckdb", "loaders")
    definition.pop("config", None)  # a project's configuration, not part of a definition
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def sim() -> t.Iterator[HotjarSimulator]:
    with HotjarSimulator(seed=41, sites=2, surveys_per_site=3, responses_per_survey=(0, 80)) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, sim: HotjarSimulator) -> FreshProject:
    meltano = ensure_meltano()
    workdir = tmp_path_factory.mktemp("fresh-meltano")
    fresh = FreshProject(meltano, workdir / "my-project")
    fresh.meltano_run("init", fresh.root.name, "--no_usage_stats", cwd=workdir)
    fresh.meltano_run("add", "tap-hotjar", "--from-ref", str(HUB_FILE), "--no-install")
    fresh.set_pip_url("extractors", "tap-hotjar", _checkout_pip_url())
    target_file = _target_duckdb_definition(workdir / "target-duckdb.yml")
    fresh.meltano_run("add", "target-duckdb", "--from-ref", str(target_file), "--no-install")
    fresh.meltano_run("install")
    # Configured as the README says (`meltano config set`), plus the simulator's URL.
    cfg = sim.config()
    for name in ("client_id", "client_secret", "site_ids", "api_url"):
        value = cfg[name] if isinstance(cfg[name], str) else json.dumps(cfg[name])
        fresh.meltano_run("config", "set", "tap-hotjar", name, value)
    fresh.meltano_run("config", "set", "target-duckdb", "path", str(fresh.root / "output" / "warehouse.duckdb"))
    fresh.meltano_run("config", "set", "target-duckdb", "default_target_schema", "hotjar")
    return fresh


@pytest.fixture(scope="module")
def loaded(project: FreshProject) -> Path:
    project.meltano_run("run", "tap-hotjar", "target-duckdb")
    return project.root / "output" / "warehouse.duckdb"


def test_meltano_add_from_the_hub_file_gives_the_extractor_of_our_meltano_yml(project: FreshProject) -> None:
    added = yaml.safe_load(project.project_file.read_text())["plugins"]
    # One extractor and one loader: nothing else (Meltano 4 reads `meltano add extractor
    # tap-hotjar` as two plugin names and would add a utility too).
    assert {kind: [p["name"] for p in plugins] for kind, plugins in added.items()} == {
        "extractors": ["tap-hotjar"],
        "loaders": ["target-duckdb"],
    }
    assert differences(project_plugin(REPO_ROOT / "meltano.yml"), project_plugin(project.project_file)) == {}


def test_the_client_secret_stays_out_of_meltano_yml_and_listings(project: FreshProject, sim: HotjarSimulator) -> None:
    cfg = sim.config()
    listing = project.meltano_run("config", "list", "tap-hotjar", "--all")
    for name in ("client_id", "client_secret", "site_ids", "start_date", "api_url", "page_size", "organization_id"):
        assert re.search(rf"^{name}\b", listing, re.MULTILINE), name
    assert cfg["client_id"] in listing
    assert cfg["client_secret"] not in listing
    # `sensitive: true`: Meltano keeps the secret in .env, not in the file that goes into git.
    project_text = project.project_file.read_text()
    assert cfg["client_id"] in project_text
    assert cfg["client_secret"] not in project_text
    assert cfg["client_secret"] in (project.root / ".env").read_text()


def test_installed_from_the_checkout_with_the_warehouse_extra(project: FreshProject) -> None:
    python = project.root / ".meltano" / "extractors" / "tap-hotjar" / "venv" / "bin" / "python"
    probe = (
        "import json, pathlib, tap_hotjar, duckdb, psycopg;"
        "root = pathlib.Path(tap_hotjar.__file__).parent;"
        "print(json.dumps({str(p.relative_to(root)): p.read_text()"
        " for p in root.rglob('*') if p.suffix in ('.py', '.json')}))"
    )
    # Isolated (-I) and from the project: not the checkout's tap_hotjar/ through the current directory.
    proc = subprocess.run(
        [str(python), "-I", "-c", probe], cwd=project.root, capture_output=True, text=True, timeout=60, check=True
    )
    installed = json.loads(proc.stdout)
    # A regular (not editable) install of the code as it is in the checkout now, the
    # stream schemas included: no stale wheel from a cache.
    source = REPO_ROOT / "tap_hotjar"
    expected = {str(p.relative_to(source)): p.read_text() for p in source.rglob("*.py")}
    expected |= {f"schemas/{p.name}": p.read_text() for p in (REPO_ROOT / "schemas").glob("*.json")}
    assert installed == expected


def test_meltano_run_loads_every_row_the_simulator_serves(loaded: Path, sim: HotjarSimulator) -> None:
    truth = ground_truth(sim)
    assert truth.counts()["survey_answers"] > 0
    con = duckdb.connect(str(loaded), read_only=True)
    try:
        for table, keys in STREAM_KEYS.items():
            rows, distinct = con.execute(
                f"select count(*), count(distinct ({', '.join(keys)})) from hotjar.{table}"
            ).fetchone()  # type: ignore[misc]
            assert (rows, distinct) == (truth.counts()[table],) * 2, table
        response_ids = {r[0] for r in con.execute("select id from hotjar.survey_responses").fetchall()}
    finally:
        con.close()
    assert response_ids == truth.response_ids


def test_user_lookup_command_sends_a_request_to_hotjar(project: FreshProject, sim: HotjarSimulator) -> None:
    before = len(sim.user_lookups)
    # Its other settings as configured; organization_id from the environment, the other way.
    project.meltano_run(
        "invoke",
        "tap-hotjar:user-lookup",
        "--email",
        "jane@example.com",
        env={"TAP_HOTJAR_ORGANIZATION_ID": str(sim.organization_id)},
    )
    (lookup,) = sim.user_lookups[before:]
    assert lookup["body"]["data_subject_email"] == "jane@example.com"
    assert lookup["body"].get("delete_all_hits", False) is False
