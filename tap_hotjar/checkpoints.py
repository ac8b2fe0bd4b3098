"""The tap's output: Singer messages on stdout, and STATE messages only as often as they are worth it.

A STATE message carries every survey's bookmark, so it grows with the account. singer-sdk
writes one after every survey (every child partition); for 1,200 surveys that was half of
all the bytes written and most of the CPU, growing with surveys squared. Here the SDK
still says when a state is safe to write, but a STATE is only written when at least
`OUTPUT_PER_STATE` times its size in other messages was written since the previous one,
and always at the end of the run and on SIGTERM/SIGINT. So STATE is at most 1/40 of the
output (plus the final one), the state bytes of a run grow linearly with the account,
and a run killed anywhere redoes at most that much output from the last STATE it wrote:
nothing is lost, because the SDK only calls `write_state` where the state covers no
record that has not been written.

Output is buffered by the writer itself, whatever `PYTHONUNBUFFERED` says (with it,
`sys.stdout.buffer` is an unbuffered file: a write system call for every record), and
flushed with every message but a RECORD (STATE and BATCH above all), when the buffer
holds OUTPUT_BUFFER_BYTES, and at exit: a STATE never covers a record that waits in a
buffer.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import sys
import typing as t
import weakref
from urllib.parse import unquote, urlsplit

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib.encoding.simple import RecordMessage
from typing_extensions import override

from tap_hotjar.sdk_internals import encode_record_into as _encode_record_into

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message

OUTPUT_PER_STATE = 39  # bytes of other output per byte of STATE: STATE <= 2.5% of the output
# Records go to stdout in writes of this size: 3,000 writes for issue #20's 195 MB run
# instead of 300,000, and a target still sees records every 64 KiB between STATEs.
OUTPUT_BUFFER_BYTES = 64 << 10
_encode = msgspec.json.Encoder().encode
# Every writer of this process, flushed at exit (flush_output).
_WRITERS: weakref.WeakSet[CountingWriter] = weakref.WeakSet()


class CountingWriter(MsgSpecWriter):
    """singer-sdk's msgspec writer, buffering its own output and counting the bytes it writes.

    Messages are flushed to the target with each message but a RECORD (STATE, BATCH,
    SCHEMA), when OUTPUT_BUFFER_BYTES are waiting, and at exit (`flush_output`), not
    one by one as singer-sdk does: a write system call per record was 8% of the
    tap's CPU, and 19% of its profile with `PYTHONUNBUFFERED=1`. A target commits
    what precedes a STATE, so a STATE is never held back.
    """

    def __init__(self) -> None:
        super().__init__()
        self.bytes_written = 0
        self._buffer = bytearray()
        self._draining = False
        self._at_safe_point: t.Callable[[], None] | None = None
        if not _WRITERS:
            atexit.register(flush_output)
        _WRITERS.add(self)

    @override
    def write_message(self, message: Message) -> None:
        self.write_line(self.format_message(message), flush=not isinstance(message, RecordMessage))
        # A BATCH message stands for the records in its files: count them as output.
        for url in getattr(message, "manifest", None) or ():
            self.bytes_written += _local_size(url)

    def write_record(self, message: dict[str, t.Any]) -> None:
        """A RECORD message given as the dict singer-sdk would encode (see sdk_internals (9))."""
        buffer = self._buffer
        start = len(buffer)
        _encode_record_into(message, buffer, -1)  # -1: appended
        buffer += b"\n"
        self.bytes_written += len(buffer) - start
        if len(buffer) >= OUTPUT_BUFFER_BYTES:
            self._drain()

    def write_batch(self, stream: str, encoding: t.Mapping[str, t.Any], manifest: list[str]) -> None:
        """A BATCH message as singer-sdk writes it (for files the tap announces itself, batches.py)."""
        message = {"type": "BATCH", "stream": stream, "encoding": dict(encoding), "manifest": manifest}
        self.write_line(_encode(message) + b"\n")
        for url in manifest:
            self.bytes_written += _local_size(url)

    def write_line(self, data: bytes | bytearray, *, flush: bool = True) -> None:
        buffer = self._buffer
        if flush and buffer and buffer[-1] != ord("\n"):
            # A signal handler (SIGTERM) writing its STATE between a record and the
            # record's newline: the record's line is complete but for its end.
            buffer += b"\n"
        buffer += data
        self.bytes_written += len(data)
        if flush:
            self.flush()
        elif len(buffer) >= OUTPUT_BUFFER_BYTES:
            self._drain()

    def flush(self) -> None:
        """Everything written so far, to the target now."""
        self._drain()
        sys.stdout.buffer.flush()

    def at_safe_point(self, action: t.Callable[[], None]) -> None:
        """Run `action` (which writes) now, or, if a write to stdout is under way, right after it.

        For signal handlers: a handler runs between two steps of the main thread, maybe
        in the middle of a write; writing then would put its line inside another.
        """
        if self._draining:
            self._at_safe_point = action
        else:
            action()

    def _drain(self) -> None:
        buffer = self._buffer
        if not buffer or self._draining:
            return
        self._draining = True
        try:
            _write_all(sys.stdout.buffer, buffer)
            buffer.clear()
        finally:
            self._draining = False
        action, self._at_safe_point = self._at_safe_point, None
        if action is not None:
            action()


def _write_all(out: t.BinaryIO, data: bytearray) -> None:
    """Write all of `data`: an unbuffered stdout (PYTHONUNBUFFERED) may take part of it only."""
    with memoryview(data) as view:
        done = 0
        while done < len(view):
            written = out.write(view[done:])
            if written is None:  # a non-blocking stdout that is full
                select.select([], [out], [])
                continue
            done += written


def flush_output(*, quiet: bool = True) -> None:
    """Flush every writer's buffer to stdout (at exit). `quiet`: ignore an output closed already."""
    for writer in list(_WRITERS):
        if not quiet:
            writer.flush()
            continue
        with contextlib.suppress(OSError, ValueError):
            writer.flush()


class PacedStateWriter:
    """Takes the SDK's STATE messages; writes one only when enough other output came since."""

    def __init__(self, writer: CountingWriter) -> None:
        self._writer = writer
        self._pending: t.Mapping[str, t.Any] | None = None
        self._last: bytes = b""
        self._bytes_at_last = 0
        self._next_size = 0  # the size the next STATE is expected to have, at least
        self.messages = 0
        self.bytes = 0
        # Whether the live state may be written at any moment (on SIGTERM): not while
        # records wait in batch files that no BATCH message has announced yet.
        self.live_state_is_safe = True

    def write_state(self, state: t.Mapping[str, t.Any]) -> None:
        """The SDK's call: `state` (the live tap state) is safe to write now."""
        self._pending = state
        if self._earned(self._next_size):
            self._write(final=False)

    def flush(self) -> None:
        """Write the latest safe state if it was not written yet, and flush the output (the end of the run)."""
        if self._pending is not None:
            self._write(final=True)
        self._writer.flush()

    def interrupted(self, live_state: t.Mapping[str, t.Any]) -> None:
        """SIGTERM/SIGINT: write the live state if that is safe, else keep the last one written."""
        if self.live_state_is_safe:
            self._pending = live_state
            self.flush()

    def _earned(self, size: int) -> bool:
        return self._writer.bytes_written - self._bytes_at_last >= OUTPUT_PER_STATE * size

    def _write(self, *, final: bool) -> None:
        data = _encode({"type": "STATE", "value": self._pending}) + b"\n"
        if data == self._last:
            self._pending = None
            return
        if not final and self._last and not self._earned(len(data)):
            self._next_size = len(data)  # the state grew; wait for output to match it
            return
        self._pending = None
        self._writer.write_line(data)
        self._last = data
        self._next_size = len(data)
        self._bytes_at_last = self._writer.bytes_written
        self.messages += 1
        self.bytes += len(data)


def _local_size(url: str) -> int:
    parts = urlsplit(url)
    if parts.scheme not in {"", "file"}:
        return 0
    try:
        return os.path.getsize(unquote(parts.path))
    except OSError:
        return 0
