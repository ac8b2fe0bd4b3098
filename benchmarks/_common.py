"""Shared by the benchmark scripts: the simulator in its own process, running the
tap (or the floor) as a user would, and reading what they wrote.

Nothing here imports the tap: the tap is always the installed ``tap-hotjar``
executable, run as a separate process, except in profile_tap.py.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


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
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "returncode": proc.returncode,
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "maxrss_kb": usage.ru_maxrss,
    }


_HEAD = re.compile(rb'^\{"type":"(\w+)"(?:,"stream":"(\w+)")?')


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
