"""Shared by the benchmark scripts: the simulator in its own process (or in this
one, when the server's arrival times are needed), running the tap (or the floor)
as a user would, counting what they write without keeping it, reading the server's
arrival times, and printing / saving the figures.

Nothing here imports the tap: the tap is always the installed ``tap-hotjar``
executable, run as a separate process, except in profile_tap.py.

``python benchmarks/_common.py count [--digest] [--last-state]`` is the counting
reader: Singer messages on stdin, one JSON summary on stdout (see count_singer).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# The PostgreSQL server of these machines (trust auth), for the benchmarks that load into it.
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": "", "database": "test"}


def tap_executable() -> str:
    """The installed ``tap-hotjar`` next to this interpreter, else the one on PATH."""
    here = Path(sys.executable).parent / "tap-hotjar"
    if here.exists():
        return str(here)
    found = shutil.which("tap-hotjar")
    if not found:
        raise SystemExit("tap-hotjar is not installed (pip install -e . in the venv)")
    return found


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


class Simulator:
    """``python -m hotjar_simulator`` in a child process (never shares our GIL)."""

    def __init__(self, workdir: Path, **options: Any) -> None:
        self.workdir = workdir
        self.options = options
        self.proc: subprocess.Popen | None = None
        self.config: dict = {}
        self.url = ""

    def __enter__(self) -> Simulator:
        cfg_path = self.workdir / "sim-config.json"
        cmd = [PYTHON, "-m", "hotjar_simulator", "--port", "0", "--config-out", str(cfg_path)]
        for key, value in self.options.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                cmd.append(flag)
            elif value is not False and value is not None:
                cmd += [flag, str(value)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 300
        for line in self.proc.stdout:
            if line.startswith("config: "):
                self.config = json.loads(line[len("config: ") :])
                break
            if time.monotonic() > deadline:
                break
        if not self.config:
            self.__exit__()
            raise SystemExit("the simulator did not start")
        self.url = self.config["api_url"]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.loads(resp.read())

    def counts(self) -> dict:
        return self._call("GET", "/_sim/counts")

    def reset_counts(self) -> None:
        self._call("POST", "/_sim/reset-counts", {})

    def ground_truth(self) -> dict:
        return self._call("GET", "/_sim/ground-truth")

    def add_responses(self, site_id: int, survey_id: str, count: int) -> dict:
        return self._call("POST", "/_sim/add-responses", {"site_id": site_id, "survey_id": survey_id, "count": count})

    def write_config(self, path: Path, **overrides: Any) -> Path:
        path.write_text(json.dumps(dict(self.config, **overrides), indent=2))
        return path


def run_process(cmd: list[str], stdout: Path | str, stderr: Path | str, env: dict | None = None) -> dict:
    """Run ``cmd``; wall seconds, CPU seconds (user+sys) and peak RSS from wait4."""
    usage_file = Path(stderr).with_suffix(".usage.json")
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        t0 = time.perf_counter()
        subprocess.run(launched(cmd, usage_file), stdout=out, stderr=err, cwd=ROOT, env=env, check=True)
        wall = time.perf_counter() - t0
    returncode, cpu, maxrss_kb = child_usage(usage_file)
    return {"returncode": returncode, "wall": wall, "cpu": cpu, "maxrss_kb": maxrss_kb}


_HEAD = re.compile(rb'^\{"type":"(\w+)"(?:,"stream":"(\w+)")?')


def psql(sql: str) -> None:
    """One statement through psql; its output (a dropped schema's NOTICEs) kept out of the figures."""
    subprocess.run(
        ["psql", "-h", PG["host"], "-U", PG["user"], "-d", PG["database"], "-qc", sql],
        check=True,
        capture_output=True,
    )


def count_messages(path: Path | str) -> Counter:
    """Counter of (type, stream) over a Singer output file (stream None for STATE)."""
    counts: Counter = Counter()
    with open(path, "rb") as f:
        for line in f:
            m = _HEAD.match(line)
            if m:
                counts[(m.group(1).decode(), m.group(2).decode() if m.group(2) else None)] += 1
            elif line.strip():
                msg = json.loads(line)
                counts[(msg.get("type"), msg.get("stream"))] += 1
    return counts


def records(counts: Counter, stream: str | None = None) -> int:
    return sum(n for (typ, s), n in counts.items() if typ == "RECORD" and (stream is None or s == stream))


def last_state(path: Path | str) -> dict | None:
    """The value of the last STATE message in a Singer output file."""
    state = None
    with open(path, "rb") as f:
        for line in f:
            if line.startswith(b'{"type":"STATE"') or b'"STATE"' in line[:40]:
                msg = json.loads(line)
                if msg.get("type") == "STATE":
                    state = msg["value"]
    return state


def parse_instant(value: str) -> _dt.datetime:
    return _dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(_dt.timezone.utc)


def survey_bookmarks(state: dict | None) -> dict[str, str]:
    """survey_id -> replication_key_value from a tap-hotjar state."""
    out: dict[str, str] = {}
    if not state:
        return out
    stream = state.get("bookmarks", {}).get("survey_responses", {})
    for part in stream.get("partitions", []):
        value = part.get("replication_key_value")
        if value is not None:
            out[str(part["context"]["survey_id"])] = value
    return out


def median(values: Sequence[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def workdir(prefix: str) -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=f"tap-hotjar-{prefix}-")


# ---------------------------------------------------------------- run description

STREAMS = ("surveys", "survey_questions", "survey_responses", "survey_answers")
SURVEYS_AND_RESPONSES = ("surveys", "survey_responses")

# Named datasets (simulator options). "benchmarks": the benchmarks' own shape (issue #10):
# 4 sites, the simulator's varied responses (4.2 answers each on average). "issue20": the
# shape issue #20 measured: one site, exactly 4 answers a response (the last to a
# question no longer in the survey), a numeric user attribute in every response.
SHAPES: dict[str, dict[str, Any]] = {
    "benchmarks": {"sites": 4, "surveys": 20, "responses_per_survey": 3000, "answers_per_response": None},
    "issue20": {"sites": 1, "surveys": 20, "responses_per_survey": 3000, "answers_per_response": 4},
}

# The environments the tap's CPU is measured in: PYTHONUNBUFFERED set (many Docker
# images and orchestrators set it; so do the machines these figures come from) or not.
UNBUFFERED_ENVS = {"unbuffered": "1", "buffered": None}


def env_with(pythonunbuffered: str | None) -> dict[str, str]:
    """This process's environment with PYTHONUNBUFFERED set to the value given, or unset (None)."""
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    if pythonunbuffered is not None:
        env["PYTHONUNBUFFERED"] = pythonunbuffered
    return env


def versions() -> dict:
    """Versions of what is measured, and the commit of the checkout (for before/after)."""
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    out: dict[str, Any] = {"python": platform.python_version()}
    for dist in ("tap-hotjar", "singer-sdk", "msgspec", "requests"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    try:
        head, _, subject = (
            subprocess.run(
                ["git", "-C", str(ROOT), "log", "-1", "--format=%h %cs%n%s"], capture_output=True, text=True, check=True
            )
            .stdout.strip()
            .partition("\n")
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "tap_hotjar", "schemas", "pyproject.toml"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        # The checkout's commit, and the last one that changed what is measured.
        tap = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%h %cs", "--", "tap_hotjar", "schemas", "pyproject.toml"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        out["commit"] = head
        out["commit_subject"] = subject
        out["tap_commit"] = tap + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        out["commit"] = None
    return out


def header(title: str, args: Any) -> dict:
    """Print what is measured on what, and return it for the JSON file."""
    meta: dict[str, Any] = {
        "benchmark": title,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "versions": versions(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "args": {k: v for k, v in vars(args).items() if k != "json"},
    }
    v = meta["versions"]
    print(f"{title}  ({meta['date']})")
    print(f"machine:  {meta['machine']}")
    print(
        f"versions: tap-hotjar {v['tap-hotjar']} (tap code at {v.get('tap_commit')}, checkout at {v['commit']}); "
        f"singer-sdk {v['singer-sdk']}, msgspec {v['msgspec']}, requests {v['requests']}"
    )
    # Other engineers share the machine's cores: absolute times mean little when this is high.
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in meta['loadavg_start'])}")
    meta["pythonunbuffered"] = os.environ.get("PYTHONUNBUFFERED")
    print(f"PYTHONUNBUFFERED in this environment: {meta['pythonunbuffered'] or '(unset)'}")
    sys.stdout.flush()
    return meta


def finish(meta: dict, runs: list[dict], figures: dict, json_path: str | None) -> None:
    """Print the load average at the end; write everything to ``json_path`` if given.

    ``figures`` is flat (name -> number or None): the headline figures, which
    compare.py sets side by side for two JSON files.
    """
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in meta['loadavg_end'])}")
    if json_path:
        doc = dict(meta, figures=figures, runs=runs)
        Path(json_path).write_text(json.dumps(doc, indent=1, default=str) + "\n")
        print(f"figures written to {json_path}")


def table(rows: list[dict], columns: list[tuple[str, str, str]], indent: str = "") -> None:
    """Print ``rows`` as an aligned table: columns are (heading, key, format spec).

    A missing or None value prints as '-'; a str value is printed as it is.
    """
    cells = [[h for h, _, _ in columns]]
    for row in rows:
        line = []
        for _, key, fmt in columns:
            value = row.get(key)
            if value is None:
                line.append("-")
            elif isinstance(value, str):
                line.append(value)
            else:
                line.append(format(value, fmt))
        cells.append(line)
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for i, line in enumerate(cells):
        text = "  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(line, widths, strict=True)))
        print(indent + text.rstrip())
        if i == 0:
            print(indent + "  ".join("-" * w for w in widths))


def parse_list(text: str, kind: type = float) -> list:
    return [kind(x) for x in str(text).split(",") if x.strip()]


def streams_arg(text: str) -> tuple[str, ...]:
    """'all', or stream names separated by commas or '+'."""
    if text == "all":
        return STREAMS
    names = tuple(s for s in re.split(r"[,+]", text) if s)
    unknown = set(names) - set(STREAMS)
    if unknown:
        raise SystemExit(f"unknown stream(s): {', '.join(sorted(unknown))} (known: {', '.join(STREAMS)})")
    return tuple(s for s in STREAMS if s in names)


def streams_label(streams: Sequence[str]) -> str:
    return "all" if tuple(streams) == STREAMS else "+".join(streams)


def write_catalog(path: Path, config: Path, streams: Sequence[str]) -> Path | None:
    """A catalog selecting only ``streams`` (from the tap's own --discover); None for all."""
    if tuple(streams) == STREAMS:
        return None  # what a user without a catalog gets: every stream
    found = subprocess.run(
        [tap_executable(), "--config", str(config), "--discover"], capture_output=True, check=True, cwd=ROOT
    )
    catalog = json.loads(found.stdout)
    for entry in catalog["streams"]:
        for md in entry.get("metadata", []):
            if md.get("breadcrumb") == []:
                md["metadata"]["selected"] = entry["tap_stream_id"] in streams
    path.write_text(json.dumps(catalog))
    return path


def tap_command(config: Path, catalog: Path | None = None) -> list[str]:
    cmd = [tap_executable(), "--config", str(config)]
    return [*cmd, "--catalog", str(catalog)] if catalog else cmd


# ------------------------------------------------------- simulator in this process


def in_process_simulator(**options: Any) -> Any:
    """The simulator in threads of this process, for its request log (arrival times).

    Use it only when this process does nothing but wait for the tap (run_counted
    counts stdout in another process), so the simulator never waits for our GIL.
    """
    sys.path.insert(0, str(ROOT))
    from hotjar_simulator import HotjarSimulator  # noqa: PLC0415

    options.setdefault("empty_sites", 0)
    options.setdefault("empty_surveys", 0)
    return HotjarSimulator(**options)


def arrival_times(sim: Any) -> list[float]:
    """Monotonic arrival time of every /v1 request the in-process simulator saw
    (token requests and 429s included), sorted."""
    return sorted(entry[0] for entry in sim.requests_log)


def arrival_stats(times: Sequence[float], limit: float) -> dict:
    """Request rate as the server saw it.

    * rate_first_last: (n - 1) / (last arrival - first arrival): no start-up;
    * busiest_1s: most arrivals in any sliding window (t - 1 s, t], as the server's
      limiter counts them;
    * per-second bins from the first arrival: the median and minimum of the full
      bins (the last, partial, bin left out) show whether the pace is sustained
      or comes in bursts; seconds_over_limit counts bins above ``limit``.
    """
    ts = sorted(times)
    n = len(ts)
    out: dict[str, Any] = {"arrivals": n}
    if n < 2:
        return out
    span = ts[-1] - ts[0]
    out["span_s"] = span
    out["rate_first_last"] = (n - 1) / span if span > 0 else None
    best = j = 0
    for i, t in enumerate(ts):
        while ts[j] <= t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    out["busiest_1s"] = best
    bins = Counter(int(t - ts[0]) for t in ts)
    per_second = [bins.get(s, 0) for s in range(int(span) + 1)]
    full = per_second[:-1]
    out["per_second"] = per_second
    out["median_1s"] = median(full) if full else None
    out["min_1s"] = min(full) if full else None
    out["seconds_over_limit"] = sum(1 for x in per_second if limit and x > limit)
    return out


# --------------------------------------------------- the tap, stdout counted as it runs


def run_counted(
    cmd: list[str],
    stderr: Path,
    *,
    timeout: float | None = None,
    digest: bool = False,
    last_state: bool = False,
    env: dict | None = None,
) -> dict:
    """Run ``cmd`` with its stdout piped into the counting reader (another process:
    nothing held in memory, and this process stays free for an in-process simulator).

    Returns wall seconds, CPU seconds (user+sys of ``cmd`` alone, from wait4), peak
    RSS, exit code, whether ``timeout`` killed it, and the reader's summary under
    "out" (see count_singer).
    """
    flags = ["count"] + (["--digest"] if digest else []) + (["--last-state"] if last_state else [])
    usage_file = Path(stderr).with_suffix(".usage.json")
    usage_file.unlink(missing_ok=True)
    with open(stderr, "wb") as err:
        t0 = time.perf_counter()
        # Its own session: a timeout kills the launcher and the tap together.
        proc = subprocess.Popen(
            launched(cmd, usage_file), stdout=subprocess.PIPE, stderr=err, cwd=ROOT, env=env, start_new_session=True
        )
        assert proc.stdout is not None
        reader = subprocess.Popen([PYTHON, __file__, *flags], stdin=proc.stdout, stdout=subprocess.PIPE, cwd=ROOT)
        proc.stdout.close()  # the reader holds the pipe now: it sees EOF when the tap exits
        killed: list[bool] = []

        def _kill() -> None:
            killed.append(True)
            os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, _kill) if timeout else None
        if timer:
            timer.start()
        proc.wait()
        wall = time.perf_counter() - t0
        if timer:
            timer.cancel()
        summary, _ = reader.communicate()
    if usage_file.exists():
        proc.returncode, cpu, maxrss_kb = child_usage(usage_file)
    else:  # the launcher itself was killed (timeout)
        cpu, maxrss_kb = 0.0, 0
    return {
        "returncode": proc.returncode,
        "timed_out": bool(killed),
        "wall": wall,
        "cpu": cpu,
        "maxrss_kb": maxrss_kb,
        "out": json.loads(summary),
        "log": log_summary(stderr),
    }


def log_summary(path: Path) -> dict:
    """Lines and bytes the tap wrote on stderr, by level (METRIC lines apart)."""
    lines = nbytes = metric = 0
    levels: Counter = Counter()
    with open(path, "rb") as f:
        for line in f:
            lines += 1
            nbytes += len(line)
            parts = line.split(b"|", 3)
            if len(parts) >= 3:
                levels[parts[1].strip().decode(errors="replace")] += 1
            if b"METRIC:" in line:
                metric += 1
    return {"lines": lines, "bytes": nbytes, "metric_lines": metric, "levels": dict(levels)}


_RECORD = b'{"type":"RECORD","stream":"'
_SCHEMA = b'{"type":"SCHEMA","stream":"'
_STATE = b'{"type":"STATE"'


def count_singer(stream: Any, *, digest: bool = False, last_state: bool = False) -> dict:
    """Bytes and lines by message type (RECORD, SCHEMA, STATE, other), records and
    record bytes by stream, STATE messages and the largest, from a binary stream.

    The message type is read from the line's head when the writer puts it first
    (singer-sdk's writers do), else from the parsed line. ``digest``: also an
    order-independent digest of each stream's records (time_extracted left out,
    keys sorted), for checking that two programs wrote the same records.
    ``last_state``: keep the last STATE's value. A last line cut short (a killed
    tap) is counted under ``partial_lines``.
    """
    nbytes: Counter = Counter()
    nlines: Counter = Counter()
    records: Counter = Counter()
    record_bytes: Counter = Counter()
    digests: dict[str, int] = {}
    names: dict[bytes, str] = {}
    state_max = 0
    last = b""
    partial = 0
    for line in stream:
        n = len(line)
        if not line.endswith(b"\n"):
            partial += 1
            nbytes["partial"] += n
            continue
        name = ""
        kind: str | None
        if line.startswith(_RECORD):
            kind = "RECORD"
            raw = line[len(_RECORD) : line.index(b'"', len(_RECORD))]
            name = names.get(raw) or names.setdefault(raw, raw.decode())
        elif line.startswith(_STATE):
            kind = "STATE"
        elif line.startswith(_SCHEMA):
            kind = "SCHEMA"
        else:
            try:
                msg = json.loads(line)
                kind = msg.get("type") if isinstance(msg, dict) else None
                name = str(msg.get("stream")) if kind == "RECORD" else ""
            except ValueError:
                kind = None
            if kind not in ("RECORD", "SCHEMA", "STATE"):
                kind = "other"
        nbytes[kind] += n
        nlines[kind] += 1
        if kind == "RECORD":
            records[name] += 1
            record_bytes[name] += n
            if digest:
                record = json.loads(line)["record"]
                canon = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                h = int.from_bytes(hashlib.blake2b(canon.encode(), digest_size=8).digest(), "big")
                digests[name] = (digests.get(name, 0) + h) % (1 << 64)
        elif kind == "STATE":
            state_max = max(state_max, n)
            if last_state:
                last = line
    out: dict[str, Any] = {
        "bytes": dict(nbytes),
        "lines": dict(nlines),
        "total_bytes": sum(nbytes.values()),
        "records": dict(records),
        "record_bytes": dict(record_bytes),
        "state_messages": nlines["STATE"],
        "state_max_bytes": state_max,
        "partial_lines": partial,
    }
    if digest:
        out["digests"] = {k: f"{v:016x}" for k, v in digests.items()}
    if last_state:
        out["last_state"] = json.loads(last)["value"] if last else None
    return out


def launched(cmd: list[str], usage_file: Path) -> list[str]:
    """``cmd`` started by a small launcher that writes its rusage to ``usage_file``.

    Linux keeps, in a child's ``ru_maxrss``, the high-water mark of the process it was
    forked from (recorded at exec): a tap started straight from a benchmark that holds
    an in-process simulator and its dataset was reported as large as the benchmark
    (measured: 114 MB "peak RSS" for a tap whose own peak was 54 MB). The launcher is a
    small process, so its child's figure is the tap's own.
    """
    return [PYTHON, "-S", __file__, "launch", str(usage_file), *cmd]


def _launch(usage_file: str, cmd: list[str]) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    Path(usage_file).write_text(
        json.dumps({"cpu": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss, "status": status})
    )
    return 0


def child_usage(usage_file: Path) -> tuple[int, float, int]:
    """(exit code, CPU seconds, peak RSS kB) of the command a launcher ran."""
    usage = json.loads(usage_file.read_text())
    return os.waitstatus_to_exitcode(usage["status"]), usage["cpu"], usage["maxrss_kb"]


def _main(argv: list[str]) -> int:
    if argv and argv[0] == "launch":
        return _launch(argv[1], argv[2:])
    if not argv or argv[0] != "count":
        print(__doc__)
        return 2
    summary = count_singer(sys.stdin.buffer, digest="--digest" in argv, last_state="--last-state" in argv)
    sys.stdout.write(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
