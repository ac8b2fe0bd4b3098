"""BATCH messages (singer-sdk's `batch_config`): records in gzipped JSON Lines files, each file one message.

singer-sdk batches each sync of a stream on its own: here that is one sync per survey
(and per survey's answers), so a run of 20 large surveys made 101 files, and a run of
1,200 small ones thousands; target-postgres merges each file into its table on its own
(measured: the same records in one file per stream loaded in 33.8 s, in 101 files in
44.5 s). So the tap keeps one open file per stream across syncs (`BatchFiles`), and
announces them all at once when one of them holds `batch_size` records, and at the
end of the run. A STATE only ever follows the BATCH messages of every file holding
records it covers: singer-sdk writes STATE after a stream's BATCH message, and the other
streams' files are closed and announced just before it.

The tap adds three more things the SDK leaves open:

- Files of finished runs are removed when a run starts (targets do not delete what
  they loaded): each run names its files with a run tag (`<prefix>run-<time>-<host>-<pid>-`),
  and a run removes the files of runs of this host whose process has ended and that
  were last written more than an hour ago (the target of a run that just ended may
  still be loading its last file). The directory holds the files of the runs in
  progress and of the last hour, no more.
- singer-sdk writes batch files straight from the records, without the catalog's
  property selection, stream maps or flattening: a config that asks for both is
  refused, rather than loading what the user deselected or meant to hash.
"""

from __future__ import annotations

import dataclasses
import datetime
import gzip
import hashlib
import itertools
import logging
import os
import re
import socket
import time
import typing as t
from pathlib import Path
from urllib.parse import unquote, urlsplit

import fsspec
import msgspec

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from singer_sdk import Stream

    from tap_hotjar.checkpoints import CountingWriter

logger = logging.getLogger("tap-hotjar.batches")
_RUN_TAG = re.compile(r"run-\d{8}T\d{6}Z-([0-9a-f]{8})-(\d+)-")


def _host() -> str:
    return hashlib.sha1(socket.gethostname().encode(), usedforsecurity=False).hexdigest()[:8]


class BatchRun:
    """This run's `batch_config`: the configured one, with a run tag in the file prefix."""

    # How long a finished run's file is kept: its target reads it after the tap has
    # exited (Meltano's target runs behind the tap), and may be loading it still.
    KEEP_FINISHED_SECONDS = 3600.0

    def __init__(self, raw: Mapping[str, t.Any]) -> None:
        storage = dict(raw.get("storage") or {})
        started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.prefix = str(storage.get("prefix") or "")
        self.tag = f"run-{started}-{_host()}-{os.getpid()}-"
        self.root = _local_dir(str(storage.get("root") or ""))
        if self.root is not None:
            self.root.mkdir(parents=True, exist_ok=True)
            storage["root"] = self.root.resolve().as_uri()  # a URL the target can open
        self.config = {**raw, "storage": {**storage, "prefix": self.prefix + self.tag}}

    def remove_finished_runs(self) -> int:
        """Delete the files of earlier runs of this host that have ended an hour ago; how many."""
        if self.root is None or not self.root.is_dir():
            return 0  # remote storage: its lifecycle rules are the place for this
        removed = 0
        host = _host()
        written_before = time.time() - self.KEEP_FINISHED_SECONDS
        for path in self.root.iterdir():
            name = path.name
            if not name.startswith(self.prefix):
                continue
            match = _RUN_TAG.match(name, len(self.prefix))
            if match is None or name.startswith(self.prefix + self.tag):
                continue
            if match.group(1) != host or _alive(int(match.group(2))):
                continue
            try:
                if path.stat().st_mtime > written_before:
                    continue
                path.unlink()
                removed += 1
            except OSError as exc:
                logger.warning("Could not remove the old batch file %s: %s", path, exc.strerror)
        if removed:
            logger.info("Removed %d batch file(s) of earlier runs from %s", removed, self.root)
        return removed


@dataclasses.dataclass
class _OpenFile:
    url: str
    raw: t.Any  # the storage's file object
    gz: gzip.GzipFile
    records: int = 0


_encode = msgspec.json.Encoder().encode


class BatchFiles:
    """One open batch file per stream, written to by every sync of that stream in a run."""

    # Fast compression: the target reads any level, and the tap's CPU is the scarcer one
    # (level 9, singer-sdk's, took 2.6 s of CPU on 60,000 responses).
    COMPRESSION_LEVEL = 1

    def __init__(self, run: BatchRun, writer: CountingWriter) -> None:
        self._run = run
        self._writer = writer
        self._files: dict[str, _OpenFile] = {}
        self._numbers = itertools.count(1)
        self._cleared = False
        self.batch_size = int(run.config.get("batch_size") or 10000)
        encoding = run.config.get("encoding") or {}
        self.encoding = {"format": encoding.get("format", "jsonl"), "compression": encoding.get("compression", "gzip")}

    def add(self, stream: str, record: t.Mapping[str, t.Any]) -> bool:
        """Write a record to its stream's file; True when that file is full (time to announce)."""
        open_file = self._files.get(stream) or self._open(stream)
        open_file.gz.write(_encode(record) + b"\n")
        open_file.records += 1
        return open_file.records >= self.batch_size

    def _open(self, stream: str) -> _OpenFile:
        if not self._cleared:
            # The run's first file: the time to clear old ones (not when the tap is
            # made: --discover and a refused config delete nothing).
            self._cleared = True
            self._run.remove_finished_runs()
        storage = self._run.config["storage"]
        name = f"{storage.get('prefix') or ''}{stream}-{next(self._numbers):05d}.json.gz"
        url = f"{str(storage['root']).rstrip('/')}/{name}"
        raw = fsspec.open(url, "wb").open()
        opened = _OpenFile(url, raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=self.COMPRESSION_LEVEL))
        self._files[stream] = opened
        return opened

    def close_all(self, *, keep: str | None = None) -> list[str]:
        """Close every open file and announce it in a BATCH message, except `keep`'s,
        whose manifest is returned for singer-sdk to announce (and follow with a STATE)."""
        kept: list[str] = []
        for stream, open_file in list(self._files.items()):
            open_file.gz.close()
            open_file.raw.close()
            del self._files[stream]
            if stream == keep:
                kept = [open_file.url]
            else:
                self._writer.write_batch(stream, self.encoding, [open_file.url])
        return kept


def _local_dir(root: str) -> Path | None:
    parts = urlsplit(root)
    if root and parts.scheme in {"", "file"}:
        return Path(unquote(parts.path or root))
    return None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def batch_config_problems(config: Mapping[str, t.Any], streams: Iterable[Stream]) -> list[str]:
    """What the tap cannot write in BATCH mode, or would load differently than asked."""
    encoding = (config.get("batch_config") or {}).get("encoding") or {}
    if encoding.get("format", "jsonl") != "jsonl" or encoding.get("compression", "gzip") != "gzip":
        return [
            "batch_config.encoding must be {format: jsonl, compression: gzip} (the files the tap writes), "
            f"not {dict(encoding)}"
        ]
    problems = []
    if config.get("stream_maps"):
        problems.append("stream_maps")
    if config.get("flattening_enabled"):
        problems.append("flattening_enabled")
    for stream in streams:
        deselected = sorted(
            breadcrumb[-1]
            for breadcrumb, selected in stream.mask.items()
            if len(breadcrumb) == 2 and not selected and stream.selected
        )
        if deselected:
            problems.append(f"properties deselected in {stream.name} ({', '.join(deselected)})")
    if not problems:
        return []
    return [
        "batch_config cannot be combined with " + "; ".join(problems) + ": singer-sdk writes batch files "
        "without applying them. Use RECORD messages (no batch_config) for this pipeline"
    ]
