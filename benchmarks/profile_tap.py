"""Where the tap spends its time: a full sync under pyinstrument, in this process.

The simulator runs in its own process (about 20,000 responses, rate limit off); the
tap runs here through its real command line (``tap_hotjar.cli.main``), stdout to
/dev/null and stderr (logs) to a file, under pyinstrument (``pip install
pyinstrument`` into the venv).  pyinstrument samples one thread per profiler, so
every thread the tap starts (e.g. prefetch workers) gets its own profiler; the main
thread and the other threads are reported separately.

Printed:
1. the main thread's call tree (singer_sdk and tap_hotjar frames shown, library
   internals folded), first --lines lines;
2. the top functions by self time (all threads);
3. time by category, each sample charged to the innermost frame that matches a
   category: HTTP, JSON decode, record writing (serialise + write), type
   conformance, state, logging/metrics, timestamp parsing, answers building,
   singer-sdk per-record overhead, tap code, waiting (rate limiter, queues);
4. inclusive time of the hot functions (answers emission, post_process, ...).

    .venv/bin/python benchmarks/profile_tap.py
    .venv/bin/python benchmarks/profile_tap.py --quick          # 4,000 responses
    .venv/bin/python benchmarks/profile_tap.py --html prof.html # also an HTML report
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

try:
    from pyinstrument import Profiler
    from pyinstrument.renderers import ConsoleRenderer
    from pyinstrument.session import Session
    from pyinstrument.stack_sampler import get_stack_sampler
except ImportError:  # pragma: no cover
    raise SystemExit("pyinstrument is needed: .venv/bin/pip install pyinstrument") from None

# (category, regex on "function\0path"): first match, innermost frame first.
# Built-in frames (path "<built-in>") only match the rules that name them; others
# are charged to their caller.
CATEGORIES: list[tuple[str, re.Pattern]] = [
    (name, re.compile(rx))
    for name, rx in [
        ("waiting: rate limiter", r"^(Pacer\.)?acquire\0.*tap_hotjar/http/pacing\.py"),
        ("waiting: queues/threads (other threads' work)", r"\0.*/(queue|threading)\.py$|^(Condition|Event)\.wait"),
        (
            "JSON decode",
            r"^(Decoder\.decode|loads|raw_decode|decode|json|response_body)\0.*"
            r"(<built-in>|/json/|/simplejson/|requests/models\.py|tap_hotjar/http/pages\.py)",
        ),
        (
            "record writing (serialise + write)",
            r"^(Encoder\.encode\w*|encode_basestring\w*|dumps|encode|iterencode)\0"
            r"|\0.*singer_sdk/(io_base|contrib/msgspec|_singerlib/encoding)"
            r"|\0.*/json/encoder\.py",
        ),
        ("type conformance", r"\0.*singer_sdk/helpers/(_typing|_conformers)\.py"),
        (
            "state / bookmarks",
            r"\0.*singer_sdk/helpers/_state\.py|^(_increment_stream_state|_write_state_message"
            r"|finalize_state_progress_markers|_finalize_state)\0",
        ),
        ("logging / metrics", r"\0.*/logging/|\0.*singer_sdk/metrics\.py"),
        (
            "timestamp parsing (pendulum, datetime)",
            r"\0.*/pendulum/|^normalize_timestamp\0|\0.*/_strptime\.py"
            r"|\0.*/dateutil/",
        ),
        ("stream maps", r"\0.*singer_sdk/mapper\.py"),
        (
            "HTTP (requests, urllib3, http.client, sockets)",
            r"\0.*/(requests|urllib3|backoff|http|email)/"
            r"|\0.*/(socket|ssl|selectors)\.py",
        ),
        ("answers: building answer records", r"^(SurveyAnswersStream\.)?emit_for_response\0"),
        ("tap_hotjar code (other)", r"\0.*/tap_hotjar/"),
        ("singer-sdk per-record overhead (other)", r"\0.*/singer_sdk/"),
        ("imports", r"\0<frozen importlib"),
    ]
]
HOT = [
    "_sync_records",
    "get_records",
    "_request",
    "request_records",
    "parse_response",
    "validate_response",
    "response_body",
    "post_process",
    "normalize_timestamp",
    "emit_for_response",
    "_write_record_message",
    "_generate_record_messages",
    "conform_record_data_types",
    "_process_record",
    "_increment_stream_state",
    "write_message",
    "_sync_children",
    "_write_schema_message",
    "_write_state_message",
    "log",
]


class Scores(collections.defaultdict):
    """Seconds by name (a Counter holds ints)."""

    def __init__(self) -> None:
        super().__init__(float)

    def update(self, other: dict) -> None:  # type: ignore[override]
        for key, value in other.items():
            self[key] += value

    def most_common(self, n: int | None = None) -> list[tuple[str, float]]:
        items = sorted(self.items(), key=lambda kv: kv[1], reverse=True)
        return items if n is None else items[:n]


def _frame_key(frame_id: str) -> tuple[str, str]:
    ident = frame_id.split("\x01", 1)[0]
    parts = ident.split("\x00")
    func = parts[0]
    path = parts[1] if len(parts) > 1 else ""
    return func, path


_cat_cache: dict[str, str | None] = {}


def _category_of_frame(frame_id: str) -> str | None:
    hit = _cat_cache.get(frame_id, "")
    if hit != "":
        return hit
    func, path = _frame_key(frame_id)
    text = f"{func}\0{path}"
    result = None
    for name, rx in CATEGORIES:
        if rx.search(text):
            if path == "<built-in>" and name not in (
                "JSON decode",
                "record writing (serialise + write)",
                "waiting: queues/threads (other threads' work)",
            ):
                continue
            result = name
            break
    _cat_cache[frame_id] = result
    return result


def categorise(session: Session) -> Scores:
    out: Scores = Scores()
    for stack, seconds in session.frame_records:
        cat = "other (interpreter, stdlib)"
        for frame_id in reversed(stack):
            hit = _category_of_frame(frame_id)
            if hit is not None:
                cat = hit
                break
        out[cat] += seconds
    return out


def inclusive(session: Session) -> Scores:
    out: Scores = Scores()
    for stack, seconds in session.frame_records:
        names = {_frame_key(f)[0].rsplit(".", 1)[-1] for f in stack}
        for name in HOT:
            if name in names:
                out[name] += seconds
    return out


def self_times(sessions: list[Session]) -> Scores:
    out: Scores = Scores()
    for session in sessions:
        for stack, seconds in session.frame_records:
            func, path = _frame_key(stack[-1])
            if path == "<built-in>":  # name the caller too
                caller = _frame_key(stack[-2])[0] if len(stack) > 1 else "?"
                out[f"{func} <built-in> (from {caller})"] += seconds
            else:
                out[f"{func}  {_short(path)}"] += seconds
    return out


def _short(path: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


class _ThreadProfiles:
    """Start a pyinstrument profiler in every thread started from now on.

    Worker threads may still be running (idle daemons) when the sync ends: their
    samples so far are read from the running profiler (see `sessions`).
    """

    def __init__(self, interval: float, cpu: bool) -> None:
        self.interval = interval
        self.cpu = cpu
        self.profilers: list[tuple[str, Profiler]] = []
        self._orig = threading.Thread.run
        self._lock = threading.Lock()

    def __enter__(self) -> _ThreadProfiles:
        orig, me = self._orig, self

        def run(thread: threading.Thread) -> None:
            prof = Profiler(interval=me.interval, async_mode="disabled")
            if me.cpu:
                get_stack_sampler().timer_func = time.thread_time
            with me._lock:
                me.profilers.append((thread.name, prof))
            prof.start()
            try:
                orig(thread)
            finally:
                prof.stop()

        threading.Thread.run = run  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        threading.Thread.run = self._orig  # type: ignore[method-assign]

    def sessions(self) -> list[Session]:
        out = []
        with self._lock:
            profilers = list(self.profilers)
        for _, prof in profilers:
            active = prof._active_session
            if active is not None:
                records = list(active.frame_records)
                out.append(
                    Session(
                        frame_records=records,
                        start_time=active.start_time,
                        duration=time.time() - active.start_time,
                        min_interval=active.interval,
                        max_interval=active.interval,
                        sample_count=len(records),
                        target_description=active.target_description,
                        start_call_stack=active.start_call_stack,
                        cpu_time=0.0,
                        sys_path=sys.path,
                        sys_prefixes=Session.current_sys_prefixes(),
                    )
                )
            elif prof.last_session is not None:
                out.append(prof.last_session)
        return [s for s in out if s.sample_count]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sites", type=int, default=4)
    p.add_argument("--surveys-per-site", type=int, default=5)
    p.add_argument("--responses-per-survey", type=int, default=1000)
    p.add_argument("--interval", type=float, default=0.001, help="sampling interval, s (default 0.001)")
    p.add_argument(
        "--cpu",
        action="store_true",
        help="sample each thread's CPU time instead of wall-clock time: immune to other "
        "load on the machine, but reading the clock on every call makes it about 4x "
        "slower and inflates call-heavy code",
    )
    p.add_argument("--lines", type=int, default=70, help="lines of the call tree to print (default 70)")
    p.add_argument("--html", help="also write pyinstrument's HTML report of the main thread here")
    p.add_argument("--quick", action="store_true", help="4 x 1 x 1000 = 4,000 responses")
    a = p.parse_args(argv)
    if a.quick:
        a.surveys_per_site = 1

    import tap_hotjar.cli  # noqa: PLC0415 - imported before profiling: the profile is the sync only

    tmp = c.workdir("profile")
    work = Path(tmp.name)
    n = a.sites * a.surveys_per_site * a.responses_per_survey
    c.header("profile_tap: where the tap's time goes", a)
    print(
        f"dataset: {a.sites} x {a.surveys_per_site} x {a.responses_per_survey} = {n:,} responses; "
        f"simulator in its own process, rate limit off"
    )
    with c.Simulator(
        work,
        sites=a.sites,
        surveys_per_site=a.surveys_per_site,
        responses_per_survey=a.responses_per_survey,
        empty_sites=0,
        empty_surveys=0,
        rate_limit=0,
    ) as sim:
        config = sim.write_config(work / "config.json")
        load0 = f"{os.getloadavg()[0]:.2f}"
        sys.stdout.flush()
        sys.stderr.flush()
        saved_out, saved_err = os.dup(1), os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        logfile = os.open(work / "stderr.txt", os.O_WRONLY | os.O_CREAT)
        os.dup2(devnull, 1)
        os.dup2(logfile, 2)
        profiler = Profiler(interval=a.interval, async_mode="disabled")
        if a.cpu:
            get_stack_sampler().timer_func = time.thread_time
        error = None
        try:
            with _ThreadProfiles(a.interval, a.cpu) as threads:
                cpu0, t0 = time.process_time(), time.perf_counter()
                profiler.start()
                try:
                    tap_hotjar.cli.main(["--config", str(config)])
                except SystemExit as exc:
                    error = exc
                finally:
                    profiler.stop()
                    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                    sys.stdout.flush()
                    sys.stderr.flush()
        finally:
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
        counts = sim.counts()
    if error is not None and error.code:
        print(f"the tap failed: {error}\n{(work / 'stderr.txt').read_text()[-2000:]}")
        return 1

    main_session = profiler.last_session
    assert main_session is not None
    others = threads.sessions()
    print(
        f"load average before/after: {load0} / {os.getloadavg()[0]:.2f} (other work on the machine "
        "inflates wall-clock samples)"
    )
    print(
        f"tap run: {wall:.2f} s wall, {cpu:.2f} s CPU (process), {counts['total']} requests, "
        f"{len(others)} other thread(s) profiled; sampling every {a.interval * 1000:g} ms of "
        f"{'thread CPU' if a.cpu else 'wall-clock'} time "
        "(the profiler itself slows the tap down)"
    )

    print("\n=== 1. main thread, call tree (seconds) ===")
    renderer = ConsoleRenderer(
        unicode=False,
        color=False,
        processor_options={"show_regex": r".*(singer_sdk|tap_hotjar).*", "filter_threshold": 0.005},
    )
    text = renderer.render(main_session)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    print("\n".join(lines[: a.lines]))
    if len(lines) > a.lines:
        print(f"... ({len(lines) - a.lines} more lines; --lines to see them)")

    print("\n=== 2. top 25 functions by self time, all threads (seconds) ===")
    for name, secs in self_times([main_session, *others]).most_common(25):
        print(f"{secs:7.3f}  {name}")

    for label, sessions in (("main thread", [main_session]), ("other threads", others)):
        if not sessions:
            continue
        cats = Scores()
        for s in sessions:
            cats.update(categorise(s))
        total = sum(cats.values())
        print(f"\n=== 3. by category, {label} (sampled {total:.2f} s) ===")
        for name, secs in cats.most_common():
            print(f"{secs:7.3f} s {100 * secs / total:5.1f}%  {name}")

    inc = inclusive(main_session)
    total = sum(seconds for _, seconds in main_session.frame_records)
    print(f"\n=== 4. inclusive time of hot functions, main thread (of {total:.2f} s) ===")
    for name in HOT:
        if inc[name]:
            print(f"{inc[name]:7.3f} s {100 * inc[name] / total:5.1f}%  {name}")
    if a.html:
        from pyinstrument.renderers import HTMLRenderer  # noqa: PLC0415

        Path(a.html).write_text(HTMLRenderer().render(main_session))
        print(f"\nHTML report: {a.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
