"""Several surveys' response pages read at once, handed to the SDK one survey at a time.

One survey's pages can only be fetched one after another (each page's cursor comes
from the previous page), so a tap that reads one survey at a time waits on the network
most of the time. Here worker threads each follow one survey's cursor chain, ahead of
the SDK, in the order the SDK will ask for the surveys; the SDK still consumes one
survey at a time on its own thread, so the Singer output, the bookmarks and
resumability are exactly those of a sequential run. singer-sdk has no concurrency of
its own for partitions; this is the whole of it.

How many chains run at once follows the latency the requests meet (Little's law: to
keep `rate` requests per second in flight at `latency` seconds each, about
rate x latency requests must be under way), between MIN_WORKERS and MAX_WORKERS.
Once every survey of the run is scheduled (`all_scheduled`) and the surveys still
waiting for a worker are fewer than rate x latency, they all start at once, beside the
chains under way (up to MAX_WORKERS): started only as those end, they would run alone
at the end of the run, one page per latency, too few to keep the rate (measured, issue
#20, 24 surveys of 10 pages at 250 ms: the last 2.5 s of 7 s at 15-20 requests a
second, 0.72 of what is possible from the first request to the last; 0.87 with them
started at once). Earlier in the run the waiting surveys are many and wait their turn,
which keeps the buffer for the surveys the SDK needs next.

Memory is bounded whatever the size of the account: pages wait as raw bytes (a
fraction of their parsed size; the SDK's thread decodes them when it emits them), at
most CURRENT_BYTES for the survey being emitted and, for all the others together, a
buffer that grows with latency (BUFFER_BYTES_PER_SECOND_OF_LATENCY, between
MIN_BUFFERED_BYTES and MAX_BUFFERED_BYTES): on a fast network the SDK's thread, not the
network, sets the pace, and a deeper buffer would only hold memory; under latency the
buffer is what lets many surveys' chains run at once. A page always fits when nothing
of its survey is waiting.
"""

from __future__ import annotations

import collections
import math
import queue
import threading
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Hashable, Iterator

    from tap_hotjar.http.pacing import LatencyMeter

MIN_WORKERS = 4
MAX_WORKERS = 64
# Requests in flight per (request per second x second of latency): a margin over
# Little's law for the time a worker spends waiting for a slot or for buffer room.
CONCURRENCY_MARGIN = 1.5
CURRENT_BYTES = 1 << 20
MIN_BUFFERED_BYTES = 2 << 20  # 3 MiB held 0.8 MiB more at 60,000 responses, no faster
MAX_BUFFERED_BYTES = 48 << 20
BUFFER_BYTES_PER_SECOND_OF_LATENCY = 80 << 20
_DONE = object()


class PageReader(t.Protocol):
    """What the read-ahead needs from the stream whose pages it reads."""

    def reads_pages(self) -> bool:
        """Whether pages are wanted in this run at all (the stream or a child is selected)."""

    def plan(self, context: t.Any) -> t.Any:
        """On the SDK's thread, when a survey is scheduled: what `fetch` needs (its stop point)."""

    def fetch(self, job: t.Any, emit: t.Callable[[t.Any], bool]) -> None:
        """On a worker thread: read the pages of one survey, calling `emit` for each in order,
        until the survey is read to its stop point or `emit` returns False."""


class _Job:
    def __init__(self, key: Hashable, context: t.Any) -> None:
        self.key = key
        self.context = context
        self.items: collections.deque[object] = collections.deque()
        self.buffered = 0  # bytes of the pages held in items
        self.current = False  # the SDK is emitting this survey now
        self.cancelled = False


class ReadAhead:
    """Runs `fetch(context, emit)` for scheduled contexts on worker threads.

    `fetch` calls `emit(page)` for each page in order and returns when the survey is
    read to its stop point; `emit` returns False when the reader should stop. Surveys
    must be asked for (`pages`) in the order they were scheduled; one that is skipped
    is cancelled.
    """

    def __init__(self, latency: LatencyMeter, rate: float) -> None:
        self._latency = latency
        self._rate = rate
        self._reader: PageReader | None = None
        self._todo: queue.Queue[_Job | None] = queue.Queue()
        self._scheduled: collections.deque[_Job] = collections.deque()
        self._threads: list[threading.Thread] = []
        self._cond = threading.Condition()
        self._buffered = 0  # bytes waiting in jobs that are not current
        self._spawn_lock = threading.Lock()
        self._all_scheduled = False
        self.peak_workers = 0

    def bind(self, reader: PageReader) -> None:
        """The page reader: the stream whose pages these are."""
        self._reader = reader

    @property
    def buffered_bytes_allowed(self) -> int:
        wanted = int(BUFFER_BYTES_PER_SECOND_OF_LATENCY * self._latency.seconds)
        return max(MIN_BUFFERED_BYTES, min(MAX_BUFFERED_BYTES, wanted))

    @property
    def workers_wanted(self) -> int:
        in_flight = self._rate * self._latency.seconds * CONCURRENCY_MARGIN
        return max(MIN_WORKERS, min(MAX_WORKERS, math.ceil(in_flight)))

    def schedule(self, key: Hashable, context: t.Any) -> None:
        """Start reading a survey's pages now, ahead of its turn (if its pages are wanted at all)."""
        if self._reader is None or not self._reader.reads_pages():
            return
        job = _Job(key, self._reader.plan(context))
        with self._cond:
            self._scheduled.append(job)
        self._todo.put(job)
        self._add_workers()

    def _add_workers(self) -> None:
        with self._spawn_lock:
            waiting = self._todo.qsize()
            wanted = self.workers_wanted
            if self._all_scheduled and wanted > MIN_WORKERS and waiting <= self._rate * self._latency.seconds:
                wanted = MAX_WORKERS  # the last surveys, all at once (see the module docstring)
            wanted = min(wanted, len(self._threads) + waiting)
            while len(self._threads) < wanted:
                thread = threading.Thread(target=self._work, name="hotjar-read-ahead", daemon=True)
                thread.start()
                self._threads.append(thread)
            self.peak_workers = max(self.peak_workers, len(self._threads))

    def all_scheduled(self) -> None:
        """Every survey of the run is scheduled: those still waiting for a worker are the last ones."""
        self._all_scheduled = True
        self._add_workers()

    def pages(self, key: Hashable, context: t.Any) -> Iterator[t.Any]:
        """The pages of one survey, in order; read now if it was not scheduled."""
        with self._cond:
            # Surveys scheduled earlier but never asked for (filtered out by a stream
            # map, say) must not hold a worker or buffer room.
            while self._scheduled and self._scheduled[0].key != key:
                self._cancel(self._scheduled.popleft())
            job = self._scheduled.popleft() if self._scheduled else None
        if job is None:
            if self._reader is None:
                msg = "ReadAhead has no page reader: bind() was not called"
                raise RuntimeError(msg)
            job = _Job(key, self._reader.plan(context))
            self._todo.put(job)
            self._add_workers()
        with self._cond:
            job.current = True
            self._buffered -= job.buffered
            self._cond.notify_all()
        try:
            while True:
                with self._cond:
                    while not job.items:
                        self._cond.wait()
                    item = job.items.popleft()
                    job.buffered -= _size(item)
                    self._cond.notify_all()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            with self._cond:
                job.cancelled = True
                job.items.clear()
                self._cond.notify_all()

    def _cancel(self, job: _Job) -> None:
        job.cancelled = True
        self._buffered -= job.buffered
        job.items.clear()
        job.buffered = 0
        self._cond.notify_all()

    def _has_room(self, job: _Job) -> bool:
        if job.current:
            return not job.items or job.buffered < CURRENT_BYTES
        # One page always fits: a survey never waits on itself alone.
        return not job.items or self._buffered < self.buffered_bytes_allowed

    def _put(self, job: _Job, item: object, *, is_page: bool) -> bool:
        """Hand an item to the consumer; False once the consumer gave up on the survey."""
        size = _size(item)
        with self._cond:
            while is_page and not job.cancelled and not self._has_room(job):
                self._cond.wait()
            if job.cancelled:
                return False
            job.items.append(item)
            job.buffered += size
            if not job.current:
                self._buffered += size
            self._cond.notify_all()
        if is_page:
            self._add_workers()  # the latency estimate may have grown
        return True

    def close(self) -> None:
        """Cancel what is left and let the worker threads end (the tap may live on)."""
        with self._cond:
            while self._scheduled:
                self._cancel(self._scheduled.popleft())
        with self._spawn_lock:
            for _ in self._threads:
                self._todo.put(None)
            self._threads = []

    def _work(self) -> None:
        reader = self._reader
        if reader is None:
            return
        while True:
            job = self._todo.get()
            if job is None:
                return
            if job.cancelled:
                continue
            try:
                reader.fetch(job.context, lambda page, job=job: self._put(job, page, is_page=True))  # type: ignore[misc]
            except BaseException as exc:  # noqa: BLE001 - re-raised on the consumer's thread
                self._put(job, exc, is_page=False)
                continue
            self._put(job, _DONE, is_page=False)


def _size(item: object) -> int:
    """Bytes an item holds: a page's `size`, 0 for end markers and errors."""
    return int(getattr(item, "size", 0))
