"""Shared fixtures: the Hotjar simulator and a runner for the installed tap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hotjar_simulator import HotjarSimulator

BIN_DIR = Path(sys.executable).parent
TAP = str(BIN_DIR / "tap-hotjar")

# The longest files first, as measured (2026-12-06, seconds a file on 2 cores): pytest-xdist's
# loadfile hands whole files to the workers in collection order, and a long file handed out
# last would run alone at the end while the other workers idle.
_LONGEST_FIRST = (
    "test_analytics.py",  # 110
    "test_malformed.py",  # 75
    "test_reconcile_kills.py",  # 66
    "test_dbt_package.py",  # 54
    "test_e2e_meltano.py",  # 52
    "test_interruption.py",  # 49
    "test_reconcile.py",  # 48
    "test_erasure.py",  # 48
    "test_report.py",  # 44
    "test_reconcile_safety.py",  # 43
    "test_reliability.py",  # 38
    "test_tap.py",  # 35
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's own order stays


@dataclass
class TapRun:
    """Everything one `tap-hotjar` process wrote."""

    returncode: int
    stdout: str
    stderr: str
    messages: list[dict] = field(default_factory=list)

    @property
    def records(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = defaultdict(list)
        for m in self.messages:
            if m["type"] == "RECORD":
                out[m["stream"]].append(m["record"])
        return out

    @property
    def schemas(self) -> dict[str, dict]:
        return {m["stream"]: m for m in self.messages if m["type"] == "SCHEMA"}

    @property
    def states(self) -> list[dict]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def final_state(self) -> dict:
        return self.states[-1] if self.states else {}

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_tap(
    tmp_path: Path,
    config: dict,
    *,
    state: dict | None = None,
    catalog: dict | None = None,
    extra_args: tuple[str, ...] = (),
    env: dict | None = None,
    timeout: float = 300,
) -> TapRun:
    """Run the installed executable as a user would and parse what it printed."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    args = [TAP]
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    args += ["--config", str(config_path)]
    if state is not None:
        state_path = tmp_path / "state.json"
        state_path.write_text(json.dumps(state))
        args += ["--state", str(state_path)]
    if catalog is not None:
        catalog_path = tmp_path / "catalog.json"
        catalog_path.write_text(json.dumps(catalog))
        args += ["--catalog", str(catalog_path)]
    args += list(extra_args)
    proc = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
        cwd=tmp_path,
    )
    singer_output = "--discover" not in extra_args and "--about" not in extra_args
    messages = [json.loads(line) for line in proc.stdout.split("\n") if line.strip()] if singer_output else []
    return TapRun(proc.returncode, proc.stdout, proc.stderr, messages)


@pytest.fixture
def tap(tmp_path_factory: pytest.TempPathFactory):
    """Call as tap(config, state=..., ...) to run the installed `tap-hotjar`."""

    def _run(config: dict, **kwargs) -> TapRun:
        return run_tap(tmp_path_factory.mktemp("tap"), config, **kwargs)

    return _run


@pytest.fixture
def small_sim():
    """A small dataset with every kind of site and survey, rate limit as documented."""
    with HotjarSimulator(seed=7, sites=2, surveys_per_site=3, responses_per_survey=(0, 140)) as sim:
        yield sim


@pytest.fixture(scope="module")
def shared_sim():
    """Read-only use only: one simulator for a whole test module."""
    with HotjarSimulator(seed=11, sites=2, surveys_per_site=3, responses_per_survey=(0, 160)) as sim:
        yield sim


# Reconciliation and erasure: a simulator the test may change, and an empty warehouse of
# each kind (tests/warehouses.py) with its loader installed by Meltano.


@pytest.fixture
def rsim():
    from tests.test_reliability import FaultSimulator  # noqa: PLC0415 - a test module's class

    s = FaultSimulator(seed=5, sites=2, surveys_per_site=4, responses_per_survey=(30, 60), rate_limit=None)
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def meltano(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Meltano's executable, with every plugin the tests run (the tap, both loaders, the dbt
    and report utilities) installed as meltano.yml pins them: once on a machine, reused after."""
    from tests.e2e_helpers import PLUGIN_VENVS, ensure_meltano, install_plugins  # noqa: PLC0415

    executable = ensure_meltano()
    install_plugins(executable, PLUGIN_VENVS, tmp_path_factory.mktemp("install"))
    return executable


@pytest.fixture(params=["duckdb", "postgres"])
def wh(request: pytest.FixtureRequest, meltano: Path, tmp_path: Path):
    """An empty warehouse of each kind: a DuckDB file, or fresh PostgreSQL schemas (dropped after);
    the loaders (and dbt) installed."""
    from tests.warehouses import warehouse  # noqa: PLC0415

    with warehouse(request.param, tmp_path / request.param) as w:
        yield w
