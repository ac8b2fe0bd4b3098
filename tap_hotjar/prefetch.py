"""Read several surveys' response pages at once, emit them one survey at a time.

Under network latency one survey's pages can only be fetched one after another
(each page's cursor comes from the previous page), so a sequential tap waits on
the network most of the time. Here a few worker threads each follow one survey's
cursor chain ahead of the SDK, in the order the SDK will ask for the surveys;
the SDK still consumes one survey at a time on its own thread, so the Singer
output, the per-survey bookmarks and resumability are exactly as without it.
singer-sdk has no concurrency of its own for partitions; this is the whole of it.

Bounds: at most `workers` surveys in flight and `pages_ahead` parsed pages
buffered per survey, so memory does not grow with the size of the account; the
shared rate limiter keeps the total under the API's limit.
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
PAGES_AHEAD = 4
_DONE = object()
_POLL = 0.2


class _Job:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.key = (context["site_id"], context["survey_id"])
        self.pages: queue.Queue[object] = queue.Queue(maxsize=PAGES_AHEAD)
        self.cancelled = threading.Event()

    def put(self, item: object) -> bool:
        """Hand an item to the consumer; False once the consumer gave up."""
        while not self.cancelled.is_set():
            try:
                self.pages.put(item, timeout=_POLL)
            except queue.Full:
                continue
            return True
        return False


class Prefetcher:
    """Runs `fetch(context, emit)` for scheduled contexts on worker threads.

    `fetch` calls `emit(page)` for each page in order and returns when the
    survey is read to its stop point; `emit` returns False if it should stop.
    """

    def __init__(
        self,
        fetch: Callable[[Context, Callable[[object], bool]], None],
        workers: int = WORKERS,
    ) -> None:
        self._fetch = fetch
        self._workers = workers
        self._todo: queue.Queue[_Job] = queue.Queue()
        self._scheduled: collections.deque[_Job] = collections.deque()
        self._threads: list[threading.Thread] = []

    def schedule(self, context: Context) -> None:
        job = _Job(context)
        self._scheduled.append(job)
        self._todo.put(job)
        if len(self._threads) < self._workers:
            thread = threading.Thread(target=self._work, name="hotjar-prefetch", daemon=True)
            thread.start()
            self._threads.append(thread)

    def pages(self, context: Context) -> Iterator[object]:
        """The pages of one survey, in order; fetched now if it was not scheduled."""
        key = (context["site_id"], context["survey_id"])
        # Surveys scheduled earlier but never asked for (filtered out by a stream
        # map, say) must not hold a worker.
        while self._scheduled and self._scheduled[0].key != key:
            self._scheduled.popleft().cancelled.set()
        if not self._scheduled:
            self.schedule(context)
        job = self._scheduled.popleft()
        try:
            while True:
                item = job.pages.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            job.cancelled.set()

    def _work(self) -> None:
        while True:
            job = self._todo.get()
            if job.cancelled.is_set():
                continue
            try:
                self._fetch(job.context, job.put)
            except BaseException as exc:  # noqa: BLE001 - re-raised on the consumer's thread
                job.put(exc)
                continue
            job.put(_DONE)
