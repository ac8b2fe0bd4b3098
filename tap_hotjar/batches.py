"""BATCH messages (singer-sdk's `batch_config`): records in gzipped JSON Lines files, each file one message.

singer-sdk writes the files and the messages, after each file a STATE that covers only
what the files announced so far hold; the tap adds three things the SDK leaves open:

- Files of finished runs are removed when a run starts (targets do not delete what
  they loaded): each run names its files with a run tag (`<prefix>run-<time>-<host>-<pid>-`),
  and a run removes the files of runs of this host whose process has ended. The
  directory holds the files of the runs in progress and of the last one, no more.
- singer-sdk writes batch files straight from the records, without the catalog's
  property selection, stream maps or flattening: a config that asks for both is
  refused, rather than loading what the user deselected or meant to hash.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import re
import socket
import typing as t
from pathlib import Path
from urllib.parse import unquote, urlsplit

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from singer_sdk import Stream

logger = logging.getLogger("tap-hotjar.batches")
_RUN_TAG = re.compile(r"run-\d{8}T\d{6}Z-([0-9a-f]{8})-(\d+)-")


def _host() -> str:
    return hashlib.sha1(socket.gethostname().encode(), usedforsecurity=False).hexdigest()[:8]


class BatchRun:
    """This run's `batch_config`: the configured one, with a run tag in the file prefix."""

    def __init__(self, raw: Mapping[str, t.Any]) -> None:
        storage = dict(raw.get("storage") or {})
        started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.prefix = str(storage.get("prefix") or "")
        self.tag = f"run-{started}-{_host()}-{os.getpid()}-"
        self.config = {**raw, "storage": {**storage, "prefix": self.prefix + self.tag}}
        self.root = _local_dir(str(storage.get("root") or ""))

    def remove_finished_runs(self) -> int:
        """Delete the files of earlier runs of this host that have ended; how many were deleted."""
        if self.root is None or not self.root.is_dir():
            return 0  # remote storage: its lifecycle rules are the place for this
        removed = 0
        host = _host()
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
                path.unlink()
                removed += 1
            except OSError as exc:
                logger.warning("Could not remove the old batch file %s: %s", path, exc.strerror)
        if removed:
            logger.info("Removed %d batch file(s) of earlier runs from %s", removed, self.root)
        return removed


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


def unsafe_with_batches(config: Mapping[str, t.Any], streams: Iterable[Stream]) -> list[str]:
    """What a run would load differently in BATCH mode than the user asked for."""
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
