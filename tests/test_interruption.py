"""Interruption: the installed tap killed with SIGKILL anywhere, then resumed.

A run is killed at many points of a multi-survey sync and resumed from the last
STATE it wrote before dying; the records written before that STATE (what a target
has committed when it stores the state) plus everything the resumed run writes
must hold every record of the ground truth. Nothing else about the killed run is
trusted: records after its last STATE, and a line cut in half by the kill, count
for nothing.

Kill points come in two kinds, covering page and survey boundaries and the time
between them:
- by request: the simulator kills the tap when its n-th API request arrives, for
  every n of a full sync (the token request, each survey list page, each response
  page: the first page of a survey is a survey boundary, the others page
  boundaries). The tap dies waiting for that answer.
- by output line: the test reads the tap's stdout through a pipe shrunk to one
  memory page and kills it after n lines, so it dies while writing records,
  within a few lines of n (before and after STATE messages, mid-page).
Some resumed runs are killed too, and resumed again.
"""

from __future__ import annotations

import fcntl
import gzip
import itertools
import json
import os
import signal
import subprocess
import threading
import typing as t
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from tap_hotjar.cli import CLOSED_OUTPUT
from tests.conftest import TAP
from tests.expected import KEYS, expected_records, instant
from tests.test_reliability import FaultSimulator, bookmarks

if t.TYPE_CHECKING:
    from pathlib import Path

STREAMS = ("surveys", "survey_questions", "survey_responses", "survey_answers")
PAGE = 8
WORKERS = 2  # simulators (and taps) run side by side; the dataset is the same
PIPE_PAGE = 4096
LINE_KILLS = 12


@dataclass
class Attempt:
    """What one (possibly killed) run of the tap left behind."""

    returncode: int
    lines: list[dict] = field(default_factory=list)  # complete lines only
    requests: int = 0
    stderr: str = ""
    # Records in the files of each BATCH line, by line number (read before the next run
    # starts: a run removes the batch files of finished runs).
    batch_records: dict[int, list[dict]] = field(default_factory=dict)

    def _records(self, lines: t.Iterable[tuple[int, dict]]) -> dict[str, set[tuple]]:
        out: dict[str, set[tuple]] = {s: set() for s in STREAMS}
        for i, m in lines:
            if m["type"] == "RECORD":
                out[m["stream"]].add(tuple(m["record"][k] for k in KEYS[m["stream"]]))
            elif m["type"] == "BATCH":
                out[m["stream"]] |= {tuple(r[k] for k in KEYS[m["stream"]]) for r in self.batch_records[i]}
        return out

    @property
    def committed(self) -> dict[str, set[tuple]]:
        """Record keys written (or announced in BATCH files) before the last STATE: what a target has stored."""
        last_state = max((i for i, m in enumerate(self.lines) if m["type"] == "STATE"), default=-1)
        return self._records(list(enumerate(self.lines))[:last_state])

    @property
    def delivered(self) -> dict[str, set[tuple]]:
        return self._records(enumerate(self.lines))

    @property
    def last_state(self) -> dict | None:
        states = [m["value"] for m in self.lines if m["type"] == "STATE"]
        return states[-1] if states else None


def _complete_lines(raw: bytes) -> list[dict]:
    # A SIGKILL can cut the last line: only lines that ended with "\n" count.
    # Split on "\n" only: answers contain U+2028, which str.splitlines() splits on.
    *complete, _partial = raw.split(b"\n")
    return [json.loads(line) for line in complete if line.strip()]


def _args(workdir: Path, config: dict, state: dict | None) -> list[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(json.dumps(config))
    args = [TAP, "--config", str(workdir / "config.json")]
    if state is not None:
        (workdir / "state.json").write_text(json.dumps(state))
        args += ["--state", str(workdir / "state.json")]
    return args


def run(
    sim: FaultSimulator,
    workdir: Path,
    state: dict | None,
    *,
    kill_at_request: int | None = None,
    kill_after_lines: int | None = None,
    signum: int = signal.SIGKILL,
    config: dict | None = None,
) -> Attempt:
    """Run the installed tap; kill it at a request number or after n output lines."""
    holder: dict[str, int] = {}

    def kill(fsim: FaultSimulator, route: str, args: tuple) -> None:
        os.kill(holder["pid"], signum)
        return None  # answered as usual; nobody is left to read it (SIGKILL)

    sim.arm({kill_at_request: kill} if kill_at_request else None)
    stderr_path = workdir / "stderr.txt"
    workdir.mkdir(parents=True, exist_ok=True)
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            _args(workdir, {**sim.config(page_size=PAGE), **(config or {})}, state),
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=workdir,
        )
    holder["pid"] = proc.pid
    assert proc.stdout is not None
    if kill_after_lines is None:
        raw = proc.stdout.read()
    else:
        # The tap can only run ahead of this reader by what the pipe holds.
        fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE_PAGE)
        chunks = []
        for _ in range(kill_after_lines):
            line = proc.stdout.readline()
            if not line:
                break
            chunks.append(line)
        proc.send_signal(signum)
        chunks.append(proc.stdout.read())
        raw = b"".join(chunks)
    returncode = proc.wait(timeout=60)
    lines = _complete_lines(raw)
    batches = {i: _batch_file_records(m["manifest"]) for i, m in enumerate(lines) if m["type"] == "BATCH"}
    return Attempt(returncode, lines, sim.request_number, stderr_path.read_text(), batches)


def _batch_file_records(manifest: list[str]) -> list[dict]:
    records = []
    for url in manifest:
        with gzip.open(urllib.parse.unquote(urllib.parse.urlsplit(url).path), "rt", encoding="utf-8") as f:
            records += [json.loads(line) for line in f]
    return records


def missing(truth: dict[str, set[tuple]], *attempts: Attempt, final: Attempt) -> dict[str, set[tuple]]:
    """Ground-truth keys that neither the committed part of the killed runs nor the
    final (complete) run delivered."""
    delivered = {s: set() for s in STREAMS}
    for attempt in attempts:
        for stream, keys in attempt.committed.items():
            delivered[stream] |= keys
    for stream, keys in final.delivered.items():
        delivered[stream] |= keys
    return {s: truth[s] - delivered[s] for s in STREAMS if truth[s] - delivered[s]}


@pytest.fixture(scope="module")
def sims():
    """Identical simulators, one per worker; no rate limit (not the subject here)."""
    opened = [
        FaultSimulator(seed=4, sites=2, surveys_per_site=3, responses_per_survey=(10, 26), rate_limit=None).start()
        for _ in range(WORKERS)
    ]
    yield opened
    for sim in opened:
        sim.stop()


def test_sigkill_at_every_request_and_mid_output_then_resume_loses_nothing(sims, tmp_path):
    sim = sims[0]
    expected = expected_records(sim)
    truth = {s: {tuple(r[k] for k in KEYS[s]) for r in expected[s]} for s in STREAMS}
    newest = {
        sid: max(instant(r["created_time"]) for r in expected["survey_responses"] if r["survey_id"] == sid)
        for sid in {r["survey_id"] for r in expected["survey_responses"]}
    }

    reference = run(sim, tmp_path / "reference", None)
    assert reference.returncode == 0
    requests, lines = reference.requests, len(reference.lines)
    assert sum(len(v) for v in truth.values()) > 300 and requests >= 15

    # (kind, where, kill the resumed run too at this request number or None)
    points: list[tuple[str, int, int | None]] = [("request", n, None) for n in range(1, requests + 1)]
    # Mid-output: right at, just before and just after STATE messages, halfway
    # between each two of them (the tap writes STATE only every so many bytes of
    # output, so most of a run lies between two), and evenly over the whole run.
    states_at = [i for i, m in enumerate(reference.lines) if m["type"] == "STATE"]
    assert len(states_at) >= 3
    between = [(a + b) // 2 for a, b in itertools.pairwise(states_at)]
    candidates = [
        states_at[len(states_at) // 2],
        states_at[-2] - 1,
        states_at[-2] + 2,
        *between[:5],
        *(lines * k // 6 for k in range(1, 12)),
    ]
    by_line: list[int] = []
    for n in candidates:
        if 0 < n < lines - 1 and n not in by_line and len(by_line) < LINE_KILLS:
            by_line.append(n)
    points += [("line", n, None) for n in sorted(by_line)]
    # Killed again while resuming, at the resumed run's second request and later.
    points += [("request", n, 2 + i) for i, n in enumerate(range(4, requests, requests // 3))]

    def trial(index: int, point: tuple[str, int, int | None]) -> dict:
        own = sims[index % WORKERS]
        kind, where, again = point
        workdir = tmp_path / f"{index}-{kind}-{where}"
        killed = run(
            own,
            workdir / "1",
            None,
            **{f"kill_{'at_request' if kind == 'request' else 'after_lines'}": where},
        )
        assert killed.returncode == -signal.SIGKILL, (point, killed.returncode)
        chain = [killed]
        if again is not None:
            second = run(own, workdir / "2", killed.last_state, kill_at_request=again)
            if second.returncode == -signal.SIGKILL:  # else it finished first
                chain.append(second)
        final = run(own, workdir / "final", chain[-1].last_state)
        assert final.returncode == 0, point
        lost = missing(truth, *chain, final=final)
        # Resumed to the end: every survey's bookmark is its newest response.
        marks = bookmarks(final.lines[-1]["value"]) if final.lines[-1]["type"] == "STATE" else {}
        return {
            "point": point,
            "kills": len(chain),
            "lost": sum(len(v) for v in lost.values()),
            "lost_keys": {s: sorted(v)[:3] for s, v in lost.items()},
            "bookmarks_ok": set(marks) == set(newest) and all(instant(marks[s]) == newest[s] for s in newest),
        }

    lock = threading.Lock()
    results: list[dict] = []

    def worker(index: int) -> None:
        for i in range(index, len(points), WORKERS):
            outcome = trial(i, points[i])
            with lock:
                results.append(outcome)

    with ThreadPoolExecutor(WORKERS) as pool:
        for future in [pool.submit(worker, w) for w in range(WORKERS)]:
            future.result()

    kills = sum(r["kills"] for r in results)
    lost = [r for r in results if r["lost"]]
    lost_records = sum(r["lost"] for r in results)
    chained = sum(1 for p in points if p[2] is not None)
    print(
        f"\nkill points: {len(results)} ({requests} at requests, {len(by_line)} mid-output, {chained} "
        f"also killed while resuming), kills: {kills}, records lost: {lost_records}"
    )
    assert not lost, lost[:3]
    assert all(r["bookmarks_ok"] for r in results)
    assert len(results) >= 25 and kills > len(results)


def test_sigkill_in_batch_mode_then_resume_loses_nothing(sims, tmp_path):
    """BATCH messages: a STATE only ever follows the BATCH messages whose files hold its records.

    What a target has stored when it stores a STATE is the records of the files
    announced before it; killed anywhere (every request, between BATCH and STATE
    messages, with SIGTERM too) and resumed, nothing is missing.
    """
    sim = sims[0]
    expected = expected_records(sim)
    truth = {s: {tuple(r[k] for k in KEYS[s]) for r in expected[s]} for s in STREAMS}

    def config(workdir: Path) -> dict:
        # Small files, so that a run writes many BATCH messages and STATE between them;
        # a folder per trial, as runs side by side would be different hosts' pipelines.
        return {
            "batch_config": {
                "encoding": {"format": "jsonl", "compression": "gzip"},
                "storage": {"root": (workdir / "batches").as_uri(), "prefix": "t-"},
                "batch_size": 20,
            }
        }

    reference = run(sim, tmp_path / "reference", None, config=config(tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr[-2000:]
    assert not [m for m in reference.lines if m["type"] == "RECORD"]
    assert not missing(truth, final=reference)
    kinds = [m["type"] for m in reference.lines]
    assert kinds.count("BATCH") > 20 and kinds.count("STATE") >= 3
    requests = reference.requests

    points = [("request", n) for n in range(2, requests + 1, 2)]
    states_at = [i for i, kind in enumerate(kinds) if kind == "STATE"]
    points += [("line", n) for n in sorted({states_at[1] - 1, states_at[1] + 1, len(kinds) // 2, len(kinds) - 3})]
    points += [("sigterm", n) for n in (requests // 3, 2 * requests // 3)]

    def trial(index: int, point: tuple[str, int]) -> int:
        own = sims[index % WORKERS]
        kind, where = point
        workdir = tmp_path / f"{index}-{kind}-{where}"
        if kind == "line":
            killed = run(own, workdir / "1", None, kill_after_lines=where, config=config(workdir))
        else:
            signum = signal.SIGTERM if kind == "sigterm" else signal.SIGKILL
            killed = run(own, workdir / "1", None, kill_at_request=where, signum=signum, config=config(workdir))
        assert killed.returncode in (-signal.SIGKILL, 128 + signal.SIGTERM), (point, killed.returncode)
        final = run(own, workdir / "final", killed.last_state, config=config(workdir))
        assert final.returncode == 0, (point, final.stderr[-2000:])
        return sum(len(v) for v in missing(truth, killed, final=final).values())

    with ThreadPoolExecutor(WORKERS) as pool:
        lost = list(pool.map(lambda item: trial(*item), enumerate(points)))
    print(f"\nbatch mode kill points: {len(points)}, records lost: {sum(lost)}")
    assert sum(lost) == 0, [p for p, n in zip(points, lost, strict=True) if n]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_or_sigint_writes_state_exits_non_zero_and_resumes(sims, tmp_path, signum):
    """A container stopped politely: the sync did not finish, so the exit code must
    not say it did (singer-sdk's own handler exits 0); the STATE it writes on the
    way out is safe to resume from."""
    sim = sims[0]
    expected = expected_records(sim)
    truth = {s: {tuple(r[k] for k in KEYS[s]) for r in expected[s]} for s in STREAMS}
    stopped = run(sim, tmp_path / "stopped", None, kill_at_request=8, signum=signum)
    assert stopped.returncode == 128 + signum, stopped.stderr[-1000:]
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith("tap-hotjar: error: interrupted by " + signal.Signals(signum).name), last
    assert "Traceback" not in stopped.stderr
    final = run(sim, tmp_path / "resumed", stopped.last_state)
    assert final.returncode == 0
    assert not missing(truth, stopped, final=final)


def test_target_that_stops_reading_ends_the_run_with_one_line(sims, tmp_path):
    """The target died: the tap's stdout is a closed pipe. It must stop, non-zero,
    saying so, rather than exit silently (click's default) or with a traceback."""
    sim = sims[0]
    sim.arm()
    workdir = tmp_path / "closed"
    proc = subprocess.Popen(
        _args(workdir, sim.config(page_size=PAGE), None),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=workdir,
    )
    assert proc.stdout is not None and proc.stderr is not None
    for _ in range(3):
        proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) != 0
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "tap-hotjar: error: " + CLOSED_OUTPUT
