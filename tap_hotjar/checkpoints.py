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
"""

from __future__ import annotations

import os
import sys
import typing as t
from urllib.parse import unquote, urlsplit

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib.encoding.simple import RecordMessage
from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message

OUTPUT_PER_STATE = 39  # bytes of other output per byte of STATE: STATE <= 2.5% of the output
_encode = msgspec.json.Encoder().encode


class CountingWriter(MsgSpecWriter):
    """singer-sdk's msgspec writer, counting the bytes it writes (and the batch files it announces).

    Messages are flushed to the target with each STATE message (and when the output
    buffer is full, and at exit), not one by one as singer-sdk does: a write system call
    per record was 8% of the tap's CPU, and a target commits what precedes a STATE.
    """

    def __init__(self) -> None:
        super().__init__()
        self.bytes_written = 0

    @override
    def write_message(self, message: Message) -> None:
        self.write_line(self.format_message(message), flush=not isinstance(message, RecordMessage))
        # A BATCH message stands for the records in its files: count them as output.
        for url in getattr(message, "manifest", None) or ():
            self.bytes_written += _local_size(url)

    def write_batch(self, stream: str, encoding: t.Mapping[str, t.Any], manifest: list[str]) -> None:
        """A BATCH message as singer-sdk writes it (for files the tap announces itself, batches.py)."""
        message = {"type": "BATCH", "stream": stream, "encoding": dict(encoding), "manifest": manifest}
        self.write_line(_encode(message) + b"\n")
        for url in manifest:
            self.bytes_written += _local_size(url)

    def write_line(self, data: bytes | bytearray, *, flush: bool = True) -> None:
        sys.stdout.buffer.write(data)
        if flush:
            sys.stdout.buffer.flush()
        self.bytes_written += len(data)


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
        """Write the latest safe state if it was not written yet (the end of the run)."""
        if self._pending is not None:
            self._write(final=True)

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
