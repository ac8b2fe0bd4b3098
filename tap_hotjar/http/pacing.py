"""Requests spaced evenly under the API's limit, and the latency they meet.

Hotjar allows 3000 requests per minute (50 per second) per source address and answers
429 above it. requests and singer-sdk have no client-side limit, so every request of a
run (token requests included) takes a slot from one `Pacer` first. Slots are evenly
spaced, never bunched: a sliding-window limiter lets 44 requests leave at once and
then stalls, which both wastes the limit and risks a burst that the server's own window
(which sees arrival times, not send times) counts as more than 50.
"""

from __future__ import annotations

import collections
import threading
import time
import typing as t

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy

# 48.5/s: one slot every 20.6 ms, and at most 48 sends in any second of send times
# (`Pacer._per_window`), so that a one-second window at the server holds more than 50
# arrivals only if network jitter squeezes requests together by over 41 ms; the
# sustained rate stays within 3% of the documented limit. (At 49/s and 49 a second, 20
# ms of jitter sufficed: measured against the simulator on a busy machine, one 429 in
# nine runs.)
REQUESTS_PER_SECOND = 48.5
WINDOW = 1.0


class Pacer:
    """Hands out request slots at most `rate` per second, evenly spaced, across threads."""

    def __init__(self, rate: float = REQUESTS_PER_SECOND) -> None:
        if rate <= 0:
            msg = f"rate must be positive, not {rate}"
            raise ValueError(msg)
        self.rate = rate
        self._interval = 1.0 / rate
        self._per_window = max(1, int(rate * WINDOW))
        self._next_slot = 0.0
        self._sent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self.requests = 0  # slots handed out: every request of the run, token requests too

    def acquire(self) -> None:
        """Wait for this caller's slot."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            # No credit for idle time: a slot is never earlier than one interval after
            # the previous one, so a run that waited (on a 429, say) cannot burst.
            self._next_slot = slot + self._interval
        if slot > now:
            time.sleep(slot - now)
        # A thread can reach its slot late (sleep overshoot, another thread holding the
        # GIL) and so land next to the following one: a window of real send times keeps
        # such bunching from ever putting more than `rate` requests in one second.
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= WINDOW:
                    self._sent.popleft()
                if len(self._sent) < self._per_window:
                    self._sent.append(now)
                    self.requests += 1
                    return
                wait = WINDOW - (now - self._sent[0])
            time.sleep(wait)


class LatencyMeter:
    """A running estimate of the API's round-trip time, for sizing the read-ahead.

    Measured from the moment a request leaves (after its pacer slot) to its answer's
    headers: the wait for a slot is not latency. Counted in, it fed on itself (measured
    against the simulator with no latency at all: more threads, longer queues at the
    pacer, a 1.3 s "latency", 64 threads and the largest buffer).

    A moving average, not a high percentile: sized for the tail (measured against the
    simulator on a busy machine: median 56 ms, 90th percentile 283 ms), the read-ahead
    ran more threads and held more pages for no more requests per second.
    """

    def __init__(self, smoothing: float = 0.2) -> None:
        self._smoothing = smoothing
        self._estimate: float | None = None
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        with self._lock:
            if self._estimate is None:
                self._estimate = seconds
            else:
                self._estimate += self._smoothing * (seconds - self._estimate)

    @property
    def seconds(self) -> float:
        """The estimate, 0.0 before the first answer."""
        return self._estimate or 0.0


class _PacedConnection:
    """urllib3 connection mixin: take the pacer's slot right before the request's bytes go out.

    Pacing in `Session.send` leaves a stretch of Python between the slot and the wire
    (requests' adapter, urllib3's pool) where a thread can wait for the GIL while the
    SDK's thread writes records; requests that left their slots in order then reach the
    server bunched. Here the slot is taken in the last Python call before `sendall`.
    """

    pacer: Pacer
    latency: LatencyMeter
    _sent_at = 0.0

    def request(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        self.pacer.acquire()
        self._sent_at = time.monotonic()
        return super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        response = super().getresponse(*args, **kwargs)  # type: ignore[misc]
        self.latency.observe(time.monotonic() - self._sent_at)
        return response


class PacedAdapter(HTTPAdapter):
    """requests' adapter whose direct connections are paced (see `_PacedConnection`).

    Through a proxy, the slot is taken in `send` instead: proxy managers build their own
    pools (and SOCKS ones other connection classes), which are left as they are.
    """

    def __init__(self, pacer: Pacer, latency: LatencyMeter, pool_size: int) -> None:
        self.pacer = pacer
        self.latency = latency
        paced = {"pacer": pacer, "latency": latency}
        http = type("PacedHTTPConnection", (_PacedConnection, urllib3.connection.HTTPConnection), paced)
        https = type("PacedHTTPSConnection", (_PacedConnection, urllib3.connection.HTTPSConnection), paced)
        self._pools = {
            "http": type("PacedHTTPConnectionPool", (urllib3.HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("PacedHTTPSConnectionPool", (urllib3.HTTPSConnectionPool,), {"ConnectionCls": https}),
        }
        # As many kept-alive connections as read-ahead threads: fewer would be closed
        # and opened again for every request (and urllib3 warns about each).
        super().__init__(pool_connections=2, pool_maxsize=pool_size)

    def init_poolmanager(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools

    def send(self, request: requests.PreparedRequest, *args: t.Any, **kwargs: t.Any) -> requests.Response:
        if not select_proxy(request.url or "", kwargs.get("proxies") or {}):
            return super().send(request, *args, **kwargs)
        self.pacer.acquire()
        sent_at = time.monotonic()
        response = super().send(request, *args, **kwargs)
        self.latency.observe(time.monotonic() - sent_at)
        return response


class PacedSession(requests.Session):
    """A requests session whose every request takes a slot from the run's pacer."""

    def __init__(self, pacer: Pacer, latency: LatencyMeter, user_agent: str | None = None, pool_size: int = 10) -> None:
        super().__init__()
        self.pacer = pacer
        self.latency = latency
        adapter = PacedAdapter(pacer, latency, pool_size)
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        if user_agent:
            self.headers["User-Agent"] = user_agent
