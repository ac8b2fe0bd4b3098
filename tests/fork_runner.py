"""Run a command-line entry point many times, fast: fork this process, once per run.

A fresh ``tap-hotjar`` process costs ~0.7 s here, nearly all of it importing
singer-sdk and friends. The parent imports the entry point once; each run is a
``fork()``: the child points fds 0/1/2 at /dev/null and two files, builds new
``sys.stdin/stdout/stderr`` on them (pytest's capture objects stay in the parent),
calls the entry point with the argument list, and leaves with its exit status, as
the executable would (``SystemExit`` code; an uncaught exception prints its
traceback and exits 1). What a test sees is what a user sees: the command line,
stdout, stderr and the exit status. tests/test_malformed.py checks once that it
matches the installed executable.

Forked from a parent that has simulator threads: the child uses none of their
locks (logging and the import lock are re-initialised by CPython after a fork).
Linux only (``os.pidfd_open``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import select
import signal
import sys
import time
import traceback
import typing as t
import warnings

if t.TYPE_CHECKING:
    from pathlib import Path


@dataclasses.dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False


class Child:
    """One forked run, not yet reaped."""

    def __init__(self, pid: int, workdir: Path, started: float, timeout: float) -> None:
        self.pid = pid
        self.workdir = workdir
        self.started = started
        self.deadline = started + timeout
        self.pidfd = os.pidfd_open(pid)

    def fileno(self) -> int:
        return self.pidfd

    def finish(self) -> Finished:
        """Reap the child (killing it if past its deadline) and read what it wrote."""
        timed_out = False
        remaining = self.deadline - time.monotonic()
        ready, _, _ = select.select([self.pidfd], [], [], max(remaining, 0))
        if not ready:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)  # our own child, by its pid
        _, status = os.waitpid(self.pid, 0)
        os.close(self.pidfd)
        seconds = time.monotonic() - self.started
        out = (self.workdir / "stdout").read_text(encoding="utf-8", errors="replace")
        err = (self.workdir / "stderr").read_text(encoding="utf-8", errors="replace")
        return Finished(os.waitstatus_to_exitcode(status), out, err, seconds, timed_out)


def start(
    entry: t.Callable[[list[str]], object],
    argv: list[str],
    workdir: Path,
    *,
    prog: str,
    prepare: t.Callable[[], None] | None = None,
    env_drop_prefix: str | None = None,
    timeout: float = 60.0,
) -> Child:
    """Fork and run ``entry(argv)`` in the child, in `workdir`; returns at once."""
    workdir.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()  # nothing buffered in the parent may be written twice
    started = time.monotonic()
    # The child's garbage collector would walk (and so copy, page by page) every
    # object of the parent; frozen, they are left alone: about 0.1 s a run here.
    gc.freeze()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a process with threads (the simulators');
        # the child uses none of their locks (see the module docstring).
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid != 0:
        gc.unfreeze()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            code = _child(entry, argv, workdir, prog=prog, prepare=prepare, env_drop_prefix=env_drop_prefix)
        finally:
            os._exit(code)
    return Child(pid, workdir, started, timeout)


def _child(
    entry: t.Callable[[list[str]], object],
    argv: list[str],
    workdir: Path,
    *,
    prog: str,
    prepare: t.Callable[[], None] | None,
    env_drop_prefix: str | None,
) -> int:
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(workdir / "stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = os.open(workdir / "stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    for fd, target in ((null, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
        os.close(fd)
    # As an interpreter sets them up when stdout/stderr are files.
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1)  # noqa: SIM115
    sys.argv = [prog, *argv]
    os.chdir(workdir)
    if env_drop_prefix:
        for name in [n for n in os.environ if n.startswith(env_drop_prefix)]:
            del os.environ[name]
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 0
    try:
        if prepare is not None:
            prepare()
        entry(argv)
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)  # what the interpreter does with sys.exit("text")
            code = 1
    except BaseException:  # noqa: BLE001 - an uncaught exception, as the interpreter reports it
        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return code
