"""Read several surveys' response pages at once, emit them one survey at a time.

Under network latency one survey's pages can only be fetched one after another
(each page's cursor comes from the previous page), so a sequential tap waits on
the network most of the time. Here a few worker threads each follow one survey's
cursor chain ahead of the SDK, in the order the SDK will ask for the surveys;
the SDK still consumes one survey at a time on its own thread, so the Singer
output, the per-survey bookmarks and resumability are exactly as without it.
singer-sdk has no concurrency of its own for partitions; this is the whole of it.

Memory is bounded whatever the size of the account: pages wait as raw bytes (a
fraction of their parsed size; the SDK's thread decodes them when it emits
them), at most CURRENT_RESPONSES responses' worth for the survey being emitted
and BUFFERED_RESPONSES for all the others together, counted in responses so
that the bound depends neither on page size nor on survey length. Measured:
peak RSS within 9% from 6,000 to 60,000 responses, and enough read-ahead to
keep the rate limiter, not latency, in charge.
"""

from __future__ import annotations

import collections
import queue
import threading
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from singer_sdk.helpers.types import Context

WORKERS = 4
CURRENT_RESPONSES = 400
BUFFERED_RESPONSES = 3000
_DONE = object()
_POLL = 0.2


def context_key(context: Context) -> tuple:
    """A hashable key for a partition context (the same context, the same key)."""
    return tuple(sorted(context.items()))


class _Job:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.key = context_key(context)
        self.items: collections.deque[object] = collections.deque()
        self.buffered = 0  # responses in the pages held in items
        self.current = False  # the SDK is emitting this survey now
        self.cancelled = False


class Prefetcher:
    """Runs `fetch(context, emit)` for scheduled contexts on worker threads.

    `fetch` calls `emit(page)` for each page in order and returns when the
    survey is read to its stop point; `emit` returns False if it should stop.
    Surveys must be asked for (`pages`) in the order they were scheduled; one
    that is skipped is cancelled.
    """

    def __init__(self, fetch: Callable[[Context, Callable[[object], bool]], None], workers: int = WORKERS) -> None:
        self._fetch = fetch
        self._workers = workers
        self._todo: queue.Queue[_Job | None] = queue.Queue()
        self._scheduled: collections.deque[_Job] = collections.deque()
        self._threads: list[threading.Thread] = []
        self._cond = threading.Condition()

    def schedule(self, context: Context) -> None:
        job = _Job(context)
        with self._cond:
            self._scheduled.append(job)
        self._todo.put(job)
        if len(self._threads) < self._workers:
            thread = threading.Thread(target=self._work, name="hotjar-prefetch", daemon=True)
            thread.start()
            self._threads.append(thread)

    def pages(self, context: Context) -> Iterator[object]:
        """The pages of one survey, in order; fetched now if it was not scheduled."""
        key = context_key(context)
        with self._cond:
            # Surveys scheduled earlier but never asked for (filtered out by a
            # stream map, say) must not hold a worker or buffer space.
            while self._scheduled and self._scheduled[0].key != key:
                self._scheduled.popleft().cancelled = True
            job = self._scheduled.popleft() if self._scheduled else None
        if job is None:
            self.schedule(context)
            with self._cond:
                job = self._scheduled.popleft()
        with self._cond:
            job.current = True
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
                self._cond.notify_all()

    def _has_room(self, job: _Job) -> bool:
        # Checked before a page is added: one page always fits, however large.
        if job.current:
            return job.buffered < CURRENT_RESPONSES
        return sum(j.buffered for j in self._scheduled) < BUFFERED_RESPONSES

    def _put(self, job: _Job, item: object, *, is_page: bool) -> bool:
        """Hand an item to the consumer; False once the consumer gave up."""
        with self._cond:
            while is_page and not job.cancelled and not self._has_room(job):
                self._cond.wait(_POLL)
            if job.cancelled:
                return False
            job.items.append(item)
            job.buffered += _size(item)
            self._cond.notify_all()
            return True

    def close(self) -> None:
        """Cancel what is left and let the worker threads end (the tap may live on)."""
        with self._cond:
            for job in self._scheduled:
                job.cancelled = True
            self._scheduled.clear()
            self._cond.notify_all()
        for _ in self._threads:
            self._todo.put(None)
        self._threads = []

    def _work(self) -> None:
        while True:
            job = self._todo.get()
            if job is None:
                return
            if job.cancelled:
                continue
            try:
                self._fetch(job.context, lambda page, job=job: self._put(job, page, is_page=True))  # type: ignore[misc]
            except BaseException as exc:  # noqa: BLE001 - re-raised on the consumer's thread
                self._put(job, exc, is_page=False)
                continue
            self._put(job, _DONE, is_page=False)


def _size(item: object) -> int:
    """How many responses an item holds: a page's `size`, 0 for end markers."""
    return int(getattr(item, "size", 0))
