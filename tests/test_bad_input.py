"""Bad input: every wrong kind of value gets one clear line, a non-zero exit, no traceback.

For each config key, each wrong kind of value (missing, wrong type, empty, out of
range, malformed); config given as a file that is missing, not JSON or not an
object, or through TAP_HOTJAR_* variables that do not parse; a state file that is
unreadable or not a valid state; a catalog that is not JSON, has the wrong
structure or names an unknown stream; wrong credentials; an API URL nobody
answers on, or where no Hotjar API is. (tests/test_tap.py covers a first set of
config and state values; they are not repeated here.)

Every case must give:
- a non-zero exit and no Python traceback;
- one line starting with "tap-hotjar: error:" as the last line on stderr, the only
  such line, naming the problem (the needle);
- for problems found before anything is extracted (config, state, catalog,
  command line): nothing at all on stdout; otherwise only complete Singer
  messages, and no RECORD.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import typing as t
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from tests.conftest import TAP
from tests.test_reliability import ERROR_PREFIX, FaultSimulator, patched_command

if t.TYPE_CHECKING:
    from pathlib import Path

WORKERS = 2
MISSING = object()


@dataclass
class Case:
    name: str
    needle: str
    config: dict = field(default_factory=dict)  # overrides; MISSING removes the key
    files: dict = field(default_factory=dict)  # option -> text (str) or bytes, or a Path marker
    args: tuple[str, ...] = ()
    env: dict = field(default_factory=dict)
    config_env: bool = False  # --config ENV instead of a file
    before_output: bool = True  # found before anything is extracted: stdout stays empty
    command: list[str] | None = None


def config_cases() -> list[Case]:
    wrong = {
        "client_id": [(123, "wrong type"), ("", "empty"), (None, "null"), (["id"], "list")],
        "client_secret": [
            (MISSING, "missing"),
            (123, "wrong type"),
            (None, "null"),
            ({"a": 1}, "object"),
        ],
        "site_ids": [
            (MISSING, "missing"),
            ([0], "zero"),
            ([-5], "negative"),
            ([1.5], "float"),
            ([True], "boolean"),
            ([1, 1], "repeated"),
            ([[1]], "nested"),
            ({"1": True}, "object"),
            (12345, "bare number"),
            (None, "null"),
            (["123"], "numeric string"),
        ],
        "start_date": [
            (20240101, "number"),
            ("", "empty"),
            ("2024-02-30T00:00:00Z", "no such day"),
            ("31/01/2024", "not RFC 3339"),
            ("2024-01-01T25:00:00Z", "no such hour"),
        ],
        "api_url": [
            (123, "number"),
            ("", "empty"),
            ("http://", "no host"),
            ("https://api.hotjar.io?x=1", "query"),
            ("https://api.hotjar.io/#top", "fragment"),
            ("//api.hotjar.io", "no scheme"),
        ],
        "page_size": [
            (-1, "negative"),
            (1.5, "float"),
            ("50", "string"),
            (True, "boolean"),
            (1000, "too large"),
        ],
        "organization_id": [(0, "zero"), ("abc", "string"), (1.5, "float"), (True, "boolean")],
    }
    return [
        Case(f"config {key}: {label}", key, config={key: value})
        for key, values in wrong.items()
        for value, label in values
    ]


def file_cases() -> list[Case]:
    cases = []
    for option, what in (("--config", "config"), ("--state", "state"), ("--catalog", "catalog")):
        cases += [
            Case(f"{what} file missing", f"cannot read the {what} file", files={option: "MISSING"}),
            Case(
                f"{what} file is a directory",
                f"cannot read the {what} file",
                files={option: "DIRECTORY"},
            ),
            Case(f"{what} file not JSON", "not valid JSON", files={option: "{'a': 1,"}),
        ]
    cases += [
        Case("config file empty", "not valid JSON", files={"--config": ""}),
        Case("state file empty", "not valid JSON", files={"--state": ""}),
        Case("state file not UTF-8", "not valid JSON", files={"--state": b"\xff\xfe{\x00"}),
        Case("config file holds a list", "must hold a JSON object", files={"--config": "[1, 2]"}),
        Case("config file holds a string", "must hold a JSON object", files={"--config": '"x"'}),
    ]
    return cases


def state_cases() -> list[Case]:
    def state(value: object) -> dict:
        return {"--state": json.dumps(value)}

    partition = {"context": {"site_id": 1, "survey_id": "s"}, "replication_key": "created_time"}
    return [
        Case("state is a string", "state must be a JSON object", files=state("x")),
        Case("state is null", "state must be a JSON object", files=state(None)),
        Case("state bookmarks null", "bookmarks", files=state({"bookmarks": None})),
        Case(
            "state stream entry a list",
            "bookmarks.survey_responses",
            files=state({"bookmarks": {"survey_responses": []}}),
        ),
        Case(
            "state partitions not a list",
            "partitions",
            files=state({"bookmarks": {"survey_responses": {"partitions": {}}}}),
        ),
        Case(
            "state partition context not an object",
            "partitions",
            files=state({"bookmarks": {"survey_responses": {"partitions": [{"context": 5}]}}}),
        ),
        Case(
            "state bookmark a number",
            "not a timestamp",
            files=state(
                {"bookmarks": {"survey_responses": {"partitions": [{**partition, "replication_key_value": 7}]}}}
            ),
        ),
        Case(
            "state bookmark impossible date",
            "not a timestamp",
            files=state(
                {
                    "bookmarks": {
                        "survey_responses": {
                            "partitions": [{**partition, "replication_key_value": "2024-13-01T00:00:00Z"}]
                        }
                    }
                }
            ),
        ),
    ]


def catalog_cases() -> list[Case]:
    def catalog(value: object) -> dict:
        return {"--catalog": json.dumps(value)}

    schema = {"type": "object", "properties": {"id": {"type": "string"}}}
    good = {"tap_stream_id": "surveys", "stream": "surveys", "schema": schema, "metadata": []}
    return [
        Case("catalog is a list", "not a valid catalog", files=catalog([good])),
        Case("catalog without streams", "'streams'", files=catalog({})),
        Case("catalog streams not a list", "'streams'", files=catalog({"streams": "surveys"})),
        Case("catalog with no stream", "'streams'", files=catalog({"streams": []})),
        Case("catalog entry not an object", "streams[0]", files=catalog({"streams": [1]})),
        Case(
            "catalog entry without id",
            "tap_stream_id",
            files=catalog({"streams": [{"schema": schema}]}),
        ),
        Case(
            "catalog unknown stream",
            "unknown stream 'heatmaps'",
            files=catalog({"streams": [{**good, "tap_stream_id": "heatmaps", "stream": "heatmaps"}]}),
        ),
        Case(
            "catalog entry without schema",
            "schema",
            files=catalog({"streams": [{"tap_stream_id": "surveys"}]}),
        ),
        Case(
            "catalog metadata not a list",
            "metadata",
            files=catalog({"streams": [{**good, "metadata": {}}]}),
        ),
        Case("catalog stream twice", "twice", files=catalog({"streams": [good, good]})),
    ]


def env_cases() -> list[Case]:
    base = {
        "TAP_HOTJAR_CLIENT_ID": "x",
        "TAP_HOTJAR_CLIENT_SECRET": "y",
        "TAP_HOTJAR_SITE_IDS": "[1]",
    }
    return [
        Case(
            "env site_ids not JSON",
            "TAP_HOTJAR_SITE_IDS",
            config_env=True,
            env={**base, "TAP_HOTJAR_SITE_IDS": "1,2"},
        ),
        Case(
            "env page_size not a number",
            "TAP_HOTJAR_PAGE_SIZE",
            config_env=True,
            env={**base, "TAP_HOTJAR_PAGE_SIZE": "ten"},
        ),
        Case(
            "env organization_id not a number",
            "TAP_HOTJAR_ORGANIZATION_ID",
            config_env=True,
            env={**base, "TAP_HOTJAR_ORGANIZATION_ID": "acme"},
        ),
        Case("env without required settings", "client_id is required", config_env=True, env={}),
        Case(
            "env site_ids out of range",
            "site_ids.0",
            config_env=True,
            env={**base, "TAP_HOTJAR_SITE_IDS": "[0]"},
        ),
    ]


def runtime_cases(closed_port: int) -> list[Case]:
    fast = patched_command(backoff_base=0.005)
    return [
        Case("wrong client id", "credentials", config={"client_id": "nobody"}, before_output=False),
        Case(
            "wrong client id and secret",
            "credentials",
            config={"client_id": "a", "client_secret": "b"},
            before_output=False,
        ),
        Case(
            "site that does not exist",
            "site 4242 was not found",
            config={"site_ids": [4242]},
            before_output=False,
        ),
        Case(
            "api_url nobody answers on",
            "Could not reach the Hotjar token endpoint",
            config={"api_url": f"http://127.0.0.1:{closed_port}"},
            before_output=False,
            command=fast,
        ),
        Case(
            "api_url where no Hotjar API is",
            "HTTP 404",
            config={"api_url": "SIM/not-the-api"},
            before_output=False,
        ),
        Case("unknown command-line option", "--bogus", args=("--bogus",)),
    ]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_case(case: Case, sim: FaultSimulator, workdir: Path) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    config = sim.config(page_size=20)
    for key, value in case.config.items():
        if value is MISSING:
            config.pop(key, None)
        elif isinstance(value, str) and value.startswith("SIM/"):
            config[key] = sim.url + value[3:]
        else:
            config[key] = value
    args = list(case.args)
    if case.config_env:
        args += ["--config", "ENV"]
    elif "--config" not in case.files:
        (workdir / "config.json").write_text(json.dumps(config))
        args += ["--config", str(workdir / "config.json")]
    for option, content in case.files.items():
        path = workdir / option.strip("-")
        if content == "DIRECTORY":
            path.mkdir()
        elif content != "MISSING":
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        args += [option, str(path)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_HOTJAR_")}
    return subprocess.run(
        [*(case.command or [TAP]), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=workdir,
        env={**env, **case.env},
    )


def problems(case: Case, proc: subprocess.CompletedProcess) -> list[str]:
    found = []
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if proc.returncode == 0:
        found.append("exit code 0")
    if "Traceback" in proc.stderr:
        found.append("traceback")
    if not last.startswith(ERROR_PREFIX):
        found.append(f"last stderr line is not ours: {last[-200:]!r}")
    elif case.needle not in last:
        found.append(f"{case.needle!r} not in {last!r}")
    if sum(line.startswith(ERROR_PREFIX) for line in lines) != 1:
        found.append("more than one error line")
    if case.before_output:
        if proc.stdout:
            found.append(f"stdout not empty: {proc.stdout[:100]!r}")
    else:
        if proc.stdout and not proc.stdout.endswith("\n"):
            found.append("stdout ends with a partial line")
        for line in proc.stdout.split("\n"):
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError:
                found.append(f"stdout line is not JSON: {line[:100]!r}")
                break
            if message.get("type") == "RECORD":
                found.append("a RECORD was written")
                break
    return found


CASES = config_cases() + file_cases() + state_cases() + catalog_cases() + env_cases()


@pytest.fixture
def sims():
    opened = [
        FaultSimulator(seed=3, sites=1, surveys_per_site=2, responses_per_survey=5).start() for _ in range(WORKERS)
    ]
    yield opened
    for s in opened:
        s.stop()


def test_every_bad_input_gets_one_clear_line(sims, tmp_path):
    cases = CASES + runtime_cases(_closed_port())

    def worker(index: int) -> list[tuple[Case, list[str], str]]:
        out = []
        for number in range(index, len(cases), WORKERS):
            proc = run_case(cases[number], sims[index], tmp_path / str(number))
            out.append(
                (
                    cases[number],
                    problems(cases[number], proc),
                    proc.stderr.strip().splitlines()[-1:],
                )
            )
        return out

    with ThreadPoolExecutor(WORKERS) as pool:
        results = [r for chunk in pool.map(worker, range(WORKERS)) for r in chunk]
    failed = {case.name: (found, last) for case, found, last in results if found}
    print(f"\nbad inputs: {len(results)} tried, {len(results) - len(failed)} answered clearly")
    assert len(results) == len(cases) >= 80
    assert not failed, json.dumps(failed, indent=1)


def test_optional_setting_given_as_null_means_unset():
    """`"api_url": null` must not become the URL "None/v1/..."; `"page_size": null`
    must not drop `limit` from the requests. Null means: use the default."""
    from tap_hotjar.tap import TapHotjar  # noqa: PLC0415

    config = {
        "client_id": "id",
        "client_secret": "secret",
        "site_ids": [1],
        "api_url": None,
        "page_size": None,
        "start_date": None,
        "organization_id": None,
    }
    tap = TapHotjar(config=config, setup_mapper=False)
    assert tap.config["api_url"] == "https://api.hotjar.io"
    assert tap.config["page_size"] == 100
    assert tap.config.get("start_date") is None and tap.config.get("organization_id") is None
