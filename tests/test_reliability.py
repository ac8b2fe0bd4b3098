"""Reliability under faults: every record delivered, every retry bounded, failures clear.

Each test runs the tap as a separate process against the simulator with one fault
switched on, and compares what it emitted with the simulator's ground truth.

Two runners:
- ``tap`` (tests/conftest.py): the installed ``tap-hotjar`` executable, as a user
  runs it, with the real backoff (0.5 s, doubling) and timeouts (10 s / 60 s).
- ``run_patched``: the same entry point (``tap_hotjar.cli:main``) in a fresh
  interpreter after replacing fields of the one retry policy
  (``tap_hotjar.http.policy.DEFAULT``: backoff base, read timeout). Used where the real
  figures would make a test slow: a give-up after 8 tries takes 61.5 s of backoff,
  and a read timeout needs a stall longer than 60 s. The code path is the one the
  executable runs; only those constants differ, and the real schedule is checked by
  the tests that use ``tap``.

``FaultSimulator`` extends the simulator, in this file only, with faults that its
``set_faults`` switches cannot express: an action on the n-th API request (a burst
of 5xx, revoking tokens, deleting a survey, killing the tap), a persistent fault on
one survey's pages, and a record of every access token it issued (for the secrets
tests).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import time
import typing as t
from collections import Counter

import pytest

from hotjar_simulator import DropConnection, HotjarSimulator, Reply, SimRequest
from tap_hotjar.http.policy import DEFAULT as RETRIES
from tests.conftest import TapRun
from tests.expected import KEYS, expected_records, keyed

if t.TYPE_CHECKING:
    from pathlib import Path

STREAMS = ("surveys", "survey_questions", "survey_responses", "survey_answers")
ERROR_PREFIX = "tap-hotjar: error: "

Action = t.Callable[["FaultSimulator", str, tuple], Reply | None]


class FaultSimulator(HotjarSimulator):
    """The simulator plus request-numbered actions and per-survey faults.

    API requests (every ``/v1`` request, the token endpoint included) are numbered
    from 1 since the last ``arm()``. Built on the simulator's public request hooks
    (``set_request_hook``); nothing of the simulator itself is changed.
    """

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.issued_tokens: list[str] = []
        self.arm()
        self.set_request_hook(before=self._before, after=self._after)

    def arm(
        self,
        actions: dict[int, Action] | None = None,
        *,
        survey_fault: tuple[str, Action] | None = None,
        after_surveys_list: t.Callable[[int], None] | None = None,
    ) -> None:
        """Actions by request number; a fault for every request of one survey's
        responses; a callback run after each survey list page is served."""
        with self._lock:
            self._ext_n = 0
            self._ext_actions = dict(actions or {})
            self._ext_survey_fault = survey_fault
            self._ext_after_list = after_surveys_list
            self._ext_rejected: set[tuple] = set()

    @property
    def request_number(self) -> int:
        with self._lock:
            return self._ext_n

    def later(self, action: Action) -> None:
        """Run `action` on the next request that has no action of its own."""
        with self._lock:
            n = self._ext_n + 1
            while n in self._ext_actions:
                n += 1
            self._ext_actions[n] = action

    def retry_after_403_pending(self) -> bool:
        """Whether a request answered 403 has not yet been answered otherwise since."""
        with self._lock:
            return bool(self._ext_rejected)

    def _before(self, request: SimRequest) -> Reply | None:
        route, args = request.route, request.args
        with self._lock:
            self._ext_n += 1
            action = self._ext_actions.pop(self._ext_n, None)
            survey_fault = self._ext_survey_fault
        reply = None
        if action is not None:
            reply = action(self, route, args)
        if reply is None and survey_fault is not None and route == "responses" and args[1] == survey_fault[0]:
            reply = survey_fault[1](self, route, args)
        return reply

    def _after(self, request: SimRequest, reply: Reply) -> None:
        route = request.route
        key = (route, request.args, tuple(sorted((k, tuple(v)) for k, v in request.query.items())))
        status, out, _headers = reply
        with self._lock:
            after_list = self._ext_after_list
            if status == 403:
                self._ext_rejected.add(key)
            else:
                self._ext_rejected.discard(key)
            if route == "token" and status == 200:
                with contextlib.suppress(ValueError):
                    self.issued_tokens.append(json.loads(out)["access_token"])
        if route == "surveys_list" and after_list is not None:
            after_list(int(request.args[0]))


def error_reply(status: int, retry_after: int | None = None) -> Action:
    code = {
        429: "too_many_requests",
        403: "forbidden",
        500: "internal_error",
        502: "bad_gateway",
        503: "service_unavailable",
        504: "gateway_timeout",
    }[status]
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}

    def action(sim: FaultSimulator, route: str, args: tuple) -> Reply:
        return status, json.dumps({"code": code, "msg": "injected"}).encode(), dict(headers)

    return action


def garbled_reply(sim: FaultSimulator, route: str, args: tuple) -> Reply:
    return 200, b'{"next_cursor": null, "results": [{"id": "resp', {}


def reset_connection(sim: FaultSimulator, route: str, args: tuple) -> Reply:
    raise DropConnection  # the simulator drops the connection without an answer


def revoke(sim: FaultSimulator, route: str, args: tuple) -> None:
    """Revoke every token now; but not while a request refused with 403 awaits its
    retry (the tap's one retry with a new token would meet a second, independent
    revocation, which it rightly treats as fatal): on a later request then."""
    if sim.retry_after_403_pending():
        sim.later(revoke)
    else:
        sim.revoke_tokens()


def burst(start: int, statuses: list[int]) -> dict[int, Action]:
    """Consecutive error replies from request number `start` on."""
    return {start + i: error_reply(s) for i, s in enumerate(statuses)}


def surveys_with_responses(sim: HotjarSimulator) -> list[tuple[int, str]]:
    return [(site, sid) for site in sim.site_ids for sid in sim.survey_ids(site) if sim.responses(site, sid)]


# Runners


def singer_lines(stdout: str) -> list[str]:
    # Only "\n" ends a Singer message: answers hold U+2028 and other characters
    # that str.splitlines() would also split on.
    return [line for line in stdout.split("\n") if line.strip()]


def _parse(proc: subprocess.CompletedProcess) -> TapRun:
    messages = [json.loads(line) for line in singer_lines(proc.stdout)]
    return TapRun(proc.returncode, proc.stdout, proc.stderr, messages)


def _files(tmp_path: Path, config: dict, state: dict | None) -> list[str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "config.json").write_text(json.dumps(config))
    args = ["--config", str(tmp_path / "config.json")]
    if state is not None:
        (tmp_path / "state.json").write_text(json.dumps(state))
        args += ["--state", str(tmp_path / "state.json")]
    return args


FAST = {"backoff_base": 0.005}


def patched_command(**policy: t.Any) -> list[str]:
    """The tap's entry point with the retry policy's fields replaced (tap_hotjar/http/policy.py)."""
    lines = [
        "import dataclasses, sys",
        "from tap_hotjar.http import policy",
        f"policy.DEFAULT = dataclasses.replace(policy.DEFAULT, **{policy!r})",
        "from tap_hotjar.cli import main",
        "sys.argv[0] = 'tap-hotjar'",
        "main()",
    ]
    return [sys.executable, "-c", "\n".join(lines)]


def run_patched(
    tmp_path: Path,
    config: dict,
    *,
    state: dict | None = None,
    env: dict | None = None,
    timeout: float = 120,
    **patch: t.Any,
) -> TapRun:
    """The tap's entry point with class attributes patched (see the module docstring)."""
    proc = subprocess.run(
        patched_command(**patch) + _files(tmp_path, config, state),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=tmp_path,
        env={**os.environ, **(env or {})},
    )
    return _parse(proc)


# Checks


def assert_everything_delivered(run: TapRun, sim: HotjarSimulator) -> None:
    """Every record of the ground truth exactly once, nothing else, and a clean exit."""
    assert run.returncode == 0, run.stderr[-3000:]
    expected = expected_records(sim)
    for stream in STREAMS:
        got = run.records[stream]
        dupes = [k for k, n in Counter(tuple(r[k] for k in KEYS[stream]) for r in got).items() if n > 1]
        assert not dupes, (stream, dupes[:3])
        assert keyed(stream, got) == keyed(stream, expected[stream]), stream


def assert_one_line_failure(run: TapRun, *needles: str) -> str:
    """A non-zero exit whose last stderr line is our one-line error, and no traceback."""
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    last = run.stderr_lines[-1]
    assert last.startswith(ERROR_PREFIX), last
    for needle in needles:
        assert needle in last, (needle, last)
    return last


def statuses(sim: HotjarSimulator) -> Counter:
    return Counter(entry[4] for entry in sim.requests_log)


def gaps_after(sim: HotjarSimulator, status: int) -> list[float]:
    """Seconds between each answer with `status` and the next request (the retry)."""
    log = sim.requests_log
    return [log[i + 1][0] - log[i][0] for i in range(len(log) - 1) if log[i][4] == status]


# Fixtures


@pytest.fixture
def sim():
    """Two sites with three surveys each (one empty), up to 30 responses per survey."""
    with FaultSimulator(seed=5, sites=2, surveys_per_site=3, responses_per_survey=(8, 30)) as s:
        yield s


PAGE = 8


def retry_gaps(sim: HotjarSimulator, status: int) -> list[float]:
    """For each answer with `status`: seconds until the same URL was requested again.

    Matched by path and query rather than by position in the log, since the tap
    reads several surveys at once.
    """
    log = sim.requests_log
    gaps = []
    for i, (t0, _method, path, query, code) in enumerate(log):
        if code != status:
            continue
        again = next((e for e in log[i + 1 :] if e[2] == path and e[3] == query), None)
        assert again is not None, f"{path} was never retried after HTTP {status}"
        gaps.append(again[0] - t0)
    return gaps


def bookmarks(state: dict) -> dict[str, str]:
    partitions = state.get("bookmarks", {}).get("survey_responses", {}).get("partitions", [])
    return {p["context"]["survey_id"]: p["replication_key_value"] for p in partitions if "replication_key_value" in p}


def pages_of(sim: HotjarSimulator, survey_id: str) -> list[tuple]:
    return [e for e in sim.requests_log if e[2].endswith(f"/surveys/{survey_id}/responses")]


def survey_fault_first(n: int, make: t.Callable[[int], Action]) -> t.Callable:
    """A survey fault for the first `n` requests of that survey, then none."""
    calls = {"n": 0}

    def action(sim: FaultSimulator, route: str, args: tuple) -> Reply | None:
        calls["n"] += 1
        return make(calls["n"] - 1)(sim, route, args) if calls["n"] <= n else None

    return action


# 429: honour Retry-After when given, back off when not.


def test_429_with_retry_after_waits_as_asked_and_loses_nothing(sim, tap):
    sim.set_faults(error_429_every=8, retry_after=1)
    run = tap(sim.config(page_size=PAGE))
    assert_everything_delivered(run, sim)
    gaps = retry_gaps(sim, 429)
    assert len(gaps) >= 2
    assert min(gaps) >= 1.0  # Retry-After: 1


def test_429_without_retry_after_backs_off_and_loses_nothing(sim, tap):
    sim.set_faults(error_429_every=8, retry_after=None)
    run = tap(sim.config(page_size=PAGE))
    assert_everything_delivered(run, sim)
    gaps = retry_gaps(sim, 429)
    assert len(gaps) >= 2
    assert min(gaps) >= 0.5  # the first backoff step


# 5xx: each status, alone and in bursts; the real backoff schedule.


def test_burst_of_5xx_is_retried_with_doubling_backoff(sim, tap):
    _site, survey = surveys_with_responses(sim)[1]
    codes = [503, 502]
    sim.arm(survey_fault=(survey, survey_fault_first(2, lambda i: error_reply(codes[i]))))
    run = tap(sim.config(page_size=PAGE))
    assert_everything_delivered(run, sim)
    first_page = [e for e in pages_of(sim, survey) if "cursor" not in e[3]]
    assert [e[4] for e in first_page] == [*codes, 200]
    waits = [b[0] - a[0] for a, b in itertools.pairwise(first_page)]
    for wait, expected in zip(waits, (0.5, 1.0), strict=True):
        assert expected <= wait < expected * 1.1 + 1.5, waits  # generous above: a busy machine


def test_every_5xx_status_scattered_and_in_bursts_loses_nothing(sim, tmp_path):
    # Every other request fails, cycling 500/502/503/504, plus a burst of six on
    # one survey: within the eight tries a request gets.
    _site, survey = surveys_with_responses(sim)[2]
    codes = [504, 503, 502, 500, 503, 504]
    sim.arm(survey_fault=(survey, survey_fault_first(6, lambda i: error_reply(codes[i]))))
    sim.set_faults(error_5xx_every=2, error_5xx_status=[500, 502, 503, 504])
    run = run_patched(tmp_path, sim.config(page_size=PAGE), **FAST)
    assert_everything_delivered(run, sim)
    seen = statuses(sim)
    assert all(seen[code] >= 2 for code in (500, 502, 503, 504)), seen


# Network: resets, read timeouts, latency spikes.


def test_connection_resets_are_retried_and_lose_nothing(sim, tap):
    sim.set_faults(reset_every=6)
    run = tap(sim.config(page_size=PAGE))
    assert_everything_delivered(run, sim)
    assert statuses(sim)[0] >= 2  # status 0: the simulator dropped the connection


def test_stalled_responses_time_out_and_are_retried(sim, tmp_path):
    # The real read timeout is 60 s; a stall longer than that would make this test
    # slow, so the same entry point runs with a 0.5 s read timeout.
    sim.set_faults(stall_every=5, stall_seconds=1.5)
    run = run_patched(tmp_path, sim.config(page_size=PAGE), connect_timeout=5.0, read_timeout=0.5, **FAST)
    assert_everything_delivered(run, sim)
    assert "ReadTimeout" in run.stderr


def test_latency_spikes_shorter_than_the_timeout_are_waited_out(sim, tap):
    sim.set_faults(latency_spike_every=4, latency_spike_seconds=0.6, latency=0.02)
    started = time.monotonic()
    run = tap(sim.config(page_size=PAGE))
    assert_everything_delivered(run, sim)
    assert time.monotonic() - started >= 0.6
    assert "retrying" not in run.stderr  # waited, not retried
    assert statuses(sim) == Counter({200: len(sim.requests_log)})


# Tokens: expiring, revoked, and a token endpoint in trouble.


def test_token_that_expires_mid_sync_is_renewed(sim, tap):
    sim.set_faults(token_lifetime=1, latency=0.25)
    run = tap(sim.config(page_size=PAGE))
    assert_everything_delivered(run, sim)
    assert sim.counts()["token"] >= 2


def test_tokens_revoked_mid_sync_are_replaced_once_each(sim, tap):
    sim.arm({5: revoke, 12: revoke})
    run = tap(sim.config(page_size=PAGE))
    assert_everything_delivered(run, sim)
    assert statuses(sim)[403] >= 2
    # One new token per revocation, even with several requests in flight.
    assert sim.counts()["token"] == 3


def test_token_endpoint_errors_and_a_broken_token_answer_are_retried(sim, tap):
    # Request 1 is the token request: a 503, then a 429, then a 200 that is not JSON.
    sim.arm({1: error_reply(503), 2: error_reply(429, retry_after=0), 3: garbled_reply})
    run = tap(sim.config(page_size=PAGE))
    assert_everything_delivered(run, sim)
    assert sim.counts()["token"] == 4


# A survey deleted between listing and reading.


def test_survey_deleted_after_listing_is_skipped_and_keeps_its_bookmark(sim, tap):
    config = sim.config(page_size=PAGE)
    first = tap(config)
    assert first.returncode == 0, first.stderr
    before = bookmarks(first.final_state)
    listed = surveys_with_responses(sim)
    for site, survey in listed:
        sim.add_responses(site, survey, 5)
    victim_site, victim = listed[1]
    # Delete it right after its site's survey list was served: the tap has listed
    # it and goes on to read its responses.
    sim.arm(
        after_surveys_list=lambda site: (
            site == victim_site and sim.survey_ids(site).count(victim) and sim.delete_survey(site, victim)
        )
    )
    second = tap(config, state=first.final_state)
    assert second.returncode == 0, second.stderr
    assert any("404" in line and victim in line for line in second.stderr_lines)
    assert any(e[4] == 404 for e in pages_of(sim, victim))
    after = bookmarks(second.final_state)
    assert after[victim] == before[victim]
    for site, survey in listed:
        if survey == victim:
            continue
        got = {r["id"] for r in second.records["survey_responses"] if r["survey_id"] == survey}
        assert {r["id"] for r in sim.responses(site, survey)[:5]} <= got
        assert after[survey] > before[survey]
    assert not [r for r in second.records["survey_responses"] if r["survey_id"] == victim]


def test_survey_deleted_while_its_pages_are_read_gets_no_bookmark(sim, tap):
    listed = surveys_with_responses(sim)
    victim_site, victim = max(listed, key=lambda s: len(sim.responses(*s)))
    assert len(sim.responses(victim_site, victim)) > PAGE  # at least two pages

    calls = []

    def delete_after_first_page(fsim: FaultSimulator, route: str, args: tuple) -> None:
        calls.append(route)
        if len(calls) == 2:  # the first page was served; the second is asked for
            fsim.delete_survey(victim_site, victim)

    sim.arm(survey_fault=(victim, delete_after_first_page))
    run = tap(sim.config(page_size=PAGE))
    assert run.returncode == 0, run.stderr
    assert [e[4] for e in pages_of(sim, victim)] == [200, 404]
    # Its newest page was emitted, but its bookmark did not move: a later run
    # (were the survey restored) reads it from the start again.
    assert victim not in bookmarks(run.final_state)
    expected = expected_records(sim)  # without the deleted survey
    others = [r for r in run.records["survey_responses"] if r["survey_id"] != victim]
    assert keyed("survey_responses", others) == keyed("survey_responses", expected["survey_responses"])


# Bodies that are not JSON.


def test_page_that_is_not_json_is_retried_and_loses_nothing(sim, tap):
    sim.set_faults(invalid_json_every=5)
    run = tap(sim.config(page_size=PAGE))
    assert_everything_delivered(run, sim)
    assert "not valid JSON" in run.stderr


# Faults that do not go away: bounded, non-zero, one line saying why.


@pytest.mark.parametrize(
    ("fault", "needles", "tries"),
    [
        (error_reply(503), ("HTTP 503",), RETRIES.max_tries),
        (garbled_reply, ("not valid JSON",), RETRIES.max_tries),
        (reset_connection, ("network failures", "connect"), RETRIES.max_tries),
        # 429s have a budget of their own: the API says how long to wait.
        (error_reply(429, retry_after=0), ("HTTP 429",), RETRIES.max_rate_limited_tries),
    ],
    ids=["503", "not-json", "reset", "429"],
)
def test_persistent_fault_gives_up_after_bounded_tries_with_one_line(sim, tmp_path, fault, needles, tries):
    _site, survey = surveys_with_responses(sim)[2]
    sim.arm(survey_fault=(survey, fault))
    started = time.monotonic()
    run = run_patched(tmp_path, sim.config(page_size=PAGE), **FAST)
    assert time.monotonic() - started < 30
    assert_one_line_failure(run, "gave up", survey, *needles)
    assert len(pages_of(sim, survey)) == tries
    # No silent gap: no STATE ever claims the survey was read.
    assert all(survey not in bookmarks(s) for s in run.states)


def test_persistent_403_stops_after_one_new_token_and_names_the_cause(sim, tap):
    _site, survey = surveys_with_responses(sim)[1]
    sim.arm(survey_fault=(survey, error_reply(403)))
    run = tap(sim.config(page_size=PAGE))
    assert_one_line_failure(run, "403", "permission")
    assert len(pages_of(sim, survey)) == 2  # the first try, and one with a new token
    assert sim.counts()["token"] == 2


# The documented rate limit.


def test_full_sync_stays_under_50_requests_per_second(tap):
    with FaultSimulator(seed=9, sites=2, surveys_per_site=3, responses_per_survey=(40, 70)) as big:
        run = tap(big.config(page_size=2))
        assert_everything_delivered(run, big)
        counts = big.counts()
        assert counts["total"] > 100  # enough to hit the limit if it were ignored
        assert counts["status"].get("429", 0) == 0
        assert counts["max_requests_in_any_1s_window"] <= 50


def test_a_lower_rate_limit_than_documented_is_recovered_from(tap):
    with FaultSimulator(seed=9, sites=1, surveys_per_site=3, responses_per_survey=(30, 50), rate_limit=15) as slow:
        run = tap(slow.config(page_size=4))
        assert_everything_delivered(run, slow)
        assert slow.counts()["status"].get("429", 0) >= 1
