"""Secrets: the client secret and the access tokens never leave the tap.

Searched for, verbatim, in everything the tap can show: stdout and stderr of the
installed executable (sync, --about in each format, --discover), at every log
level singer-sdk 0.54.9 knows (it reads TAP_HOTJAR_LOGLEVEL, else LOGLEVEL, and
hands the name to `logging`), with its structured JSON logging
(SINGER_SDK_LOG_CONFIG), with our own traceback switch, on success with faults
and on each kind of failure; and in the message, repr and args of every exception
in the chain a failed in-process sync raises. The tokens are the simulator's
record of every token it issued during the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import typing as t
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from tests.conftest import TAP
from tests.test_reliability import (
    FAST,
    FaultSimulator,
    error_reply,
    garbled_reply,
    patched_command,
    reset_connection,
    revoke,
    surveys_with_responses,
)

if t.TYPE_CHECKING:
    from pathlib import Path

SECRET = "hj-SECRET-5e2f9a71c4b8d036"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
STRUCTURED_LOGGING = """\
version: 1
disable_existing_loggers: false
formatters:
  structured:
    (): singer_sdk.logging.StructuredFormatter
handlers:
  console:
    class: logging.StreamHandler
    formatter: structured
    stream: ext://sys.stderr
root:
  level: DEBUG
  handlers: [console]
"""


WORKERS = 2


@pytest.fixture
def sim():
    with FaultSimulator(seed=5, sites=2, surveys_per_site=3, responses_per_survey=(8, 30), client_secret=SECRET) as s:
        yield s


@pytest.fixture
def sims():
    """Identical simulators, so that runs with numbered faults can go side by side."""
    opened = [
        FaultSimulator(seed=5, sites=2, surveys_per_site=3, responses_per_survey=(8, 30), client_secret=SECRET).start()
        for _ in range(WORKERS)
    ]
    yield opened
    for s in opened:
        s.stop()


def secrets_in(text: str, tokens: list[str], *extra: str) -> list[str]:
    """The secrets found in `text` (abbreviated, so a failure does not print them)."""
    candidates = [SECRET, *tokens, *extra]
    return [s[:4] + "..." for s in candidates if s and s in text]


def _base_env() -> dict:
    return {k: v for k, v in os.environ.items() if "LOG" not in k and k != "TAP_HOTJAR_TRACEBACK"}


def invoke(
    workdir: Path,
    config: dict,
    args: tuple[str, ...] = (),
    env: dict | None = None,
    command: list[str] | None = None,
) -> tuple[int, str]:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(json.dumps(config))
    (workdir / "logging.yml").write_text(STRUCTURED_LOGGING)
    proc = subprocess.run(
        [*(command or [TAP]), "--config", str(workdir / "config.json"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=workdir,
        env={**_base_env(), **(env or {})},
    )
    return proc.returncode, proc.stdout + proc.stderr


@dataclass
class Case:
    name: str
    env: dict
    args: tuple[str, ...] = ()
    setup: t.Callable[[FaultSimulator], None] | None = None
    command: list[str] | None = None
    succeeds: bool = True
    config: dict = field(default_factory=dict)  # overrides


def run_cases(sims: list[FaultSimulator], cases: list[Case], tmp_path: Path) -> list[tuple[Case, int, str]]:
    """Each case on the next simulator; one run at a time per simulator."""

    def worker(index: int) -> list[tuple[Case, int, str]]:
        own, out = sims[index], []
        for number in range(index, len(cases), len(sims)):
            case = cases[number]
            own.arm()
            if case.setup is not None:
                case.setup(own)
            code, output = invoke(
                tmp_path / str(number),
                own.config(**{"page_size": 8, **case.config}),
                case.args,
                case.env,
                case.command,
            )
            out.append((case, code, output))
        return out

    with ThreadPoolExecutor(len(sims)) as pool:
        return [r for chunk in pool.map(worker, range(len(sims))) for r in chunk]


def faults_everywhere(sim: FaultSimulator) -> None:
    """A sync that succeeds after warnings of every kind: revoked token, 429, 5xx,
    a reset connection, a page that is not JSON.

    One revocation only: a second one, a few requests later, could meet a request
    still being retried after the first (refused, new token, 503, backoff) and refuse
    its new token too, which stops the run by design (docs/http.md); whether it does
    depends on how the threads' requests interleave, not on what this test checks.
    test_reliability.py revokes tokens twice with nothing in between."""
    sim.arm(
        {
            3: revoke,
            5: error_reply(429, retry_after=0),
            7: error_reply(503),
            8: reset_connection,
            10: garbled_reply,
        }
    )


def on_a_survey(reply: t.Callable) -> t.Callable[[FaultSimulator], None]:
    def setup(sim: FaultSimulator) -> None:
        _site, survey = surveys_with_responses(sim)[0]
        sim.arm(survey_fault=(survey, reply))

    return setup


def test_no_secret_in_any_output_at_any_log_level(sims, tmp_path):
    wrong = "hj-WRONG-0a9b8c7d6e5f"
    cases = []
    for level in LEVELS:
        env = {"TAP_HOTJAR_LOGLEVEL": level}
        cases += [
            Case(f"sync with faults {level}", env, setup=faults_everywhere),
            Case(f"403 on a survey {level}", env, setup=on_a_survey(error_reply(403)), succeeds=False),
            Case(f"wrong secret {level}", env, config={"client_secret": wrong}, succeeds=False),
            Case(f"discover {level}", env, ("--discover",)),
            Case(f"about {level}", env, ("--about",)),
        ]
    debug = {"TAP_HOTJAR_LOGLEVEL": "DEBUG"}
    structured = {"SINGER_SDK_LOG_CONFIG": "logging.yml", "TAP_HOTJAR_LOGLEVEL": "DEBUG"}
    traceback = {**debug, "TAP_HOTJAR_TRACEBACK": "1"}
    fast = patched_command(**FAST)
    cases += [
        Case("sync with faults, generic LOGLEVEL", {"LOGLEVEL": "DEBUG"}, setup=faults_everywhere),
        Case("sync with faults, structured logs", structured, setup=faults_everywhere),
        Case("403, structured logs", structured, setup=on_a_survey(error_reply(403)), succeeds=False),
        Case("403, traceback", traceback, setup=on_a_survey(error_reply(403)), succeeds=False),
        Case("wrong secret, traceback", traceback, config={"client_secret": wrong}, succeeds=False),
        Case("about json", debug, ("--about", "--format=json")),
        Case("about markdown", debug, ("--about", "--format=markdown")),
        Case("5xx give-up", debug, setup=on_a_survey(error_reply(500)), command=fast, succeeds=False),
        Case(
            "5xx give-up, traceback",
            traceback,
            setup=on_a_survey(error_reply(502)),
            command=fast,
            succeeds=False,
        ),
        Case(
            "broken page give-up, structured",
            structured,
            setup=on_a_survey(garbled_reply),
            command=fast,
            succeeds=False,
        ),
        Case(
            "token endpoint down, traceback",
            traceback,
            command=fast,
            succeeds=False,
            setup=lambda s: s.arm({n: error_reply(503) for n in range(1, 10)}),
        ),
        Case("wrong client id", debug, config={"client_id": "nobody"}, succeeds=False),
        Case(
            "bad config beside the secret",
            debug,
            config={"page_size": 0, "start_date": "soon"},
            succeeds=False,
        ),
        Case("secret of the wrong type", debug, config={"client_secret": [SECRET]}, succeeds=False),
        Case("secret as a number", traceback, config={"client_secret": 7306119152}, succeeds=False),
    ]
    results = run_cases(sims, cases, tmp_path)
    tokens = [token for s in sims for token in s.issued_tokens]
    leaks = {}
    for case, code, output in results:
        assert (code == 0) == case.succeeds, (case.name, output[-2000:])
        assert output.strip(), case.name
        if found := secrets_in(output, tokens, wrong, "7306119152"):
            leaks[case.name] = found
    assert len(results) == len(cases) and len(tokens) >= 10
    print(f"\nsecret checks: {len(cases)} runs, {len(tokens)} tokens issued, leaks: {len(leaks)}")
    assert not leaks


def test_no_secret_in_exception_messages(sim, monkeypatch):
    """The exceptions a failed sync raises, in-process, with their whole chain."""
    import dataclasses  # noqa: PLC0415

    from tap_hotjar.http import policy  # noqa: PLC0415
    from tap_hotjar.tap import TapHotjar  # noqa: PLC0415

    monkeypatch.setattr(policy, "DEFAULT", dataclasses.replace(policy.DEFAULT, backoff_base=0.001))
    _site, survey = surveys_with_responses(sim)[0]
    scenarios = {
        "wrong secret": (sim.config(client_secret="hj-WRONG-0a9b8c7d6e5f"), None),
        "403": (sim.config(), lambda: sim.arm(survey_fault=(survey, error_reply(403)))),
        "503 give-up": (sim.config(), lambda: sim.arm(survey_fault=(survey, error_reply(503)))),
        "broken page give-up": (
            sim.config(),
            lambda: sim.arm(survey_fault=(survey, garbled_reply)),
        ),
        "token endpoint broken": (
            sim.config(),
            lambda: sim.arm({n: garbled_reply for n in range(1, 20)}),
        ),
    }
    raised = {}
    for name, (config, setup) in scenarios.items():
        sim.arm()
        if setup is not None:
            setup()
        tap = TapHotjar(config=config)
        with pytest.raises(Exception) as info:
            tap.sync_all()
        raised[name] = info.value
    for name, exc in raised.items():
        chain, seen = [], exc
        while seen is not None:
            chain.append(seen)
            seen = seen.__cause__ or seen.__context__
        text = " ".join(f"{e!s} {e!r} {e.args!r}" for e in chain)
        assert not secrets_in(text, sim.issued_tokens, "hj-WRONG-0a9b8c7d6e5f"), name
    assert len(sim.issued_tokens) >= 2
