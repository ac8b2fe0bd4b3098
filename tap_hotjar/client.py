"""The base REST stream: everything HTTP about the Hotjar API lives here."""

from __future__ import annotations

import collections
import email.utils
import random
import threading
import time
import typing as t
import urllib.parse
from http import HTTPStatus

import msgspec
import requests
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.pagination import BaseAPIPaginator
from singer_sdk.streams import RESTStream

from tap_hotjar.auth import HotjarAuthenticator
from tap_hotjar.errors import HotjarAPIError, HotjarAuthError, describe_error_body

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator

    from backoff.types import Details
    from singer_sdk.helpers.types import Context

# Documented limit: 3000 requests per minute (50 per second) per source address.
# Stay below it: the server's window sees arrivals, not our send times, and
# arrivals bunch up by a few milliseconds (measured: 45 here gave 49 there).
REQUESTS_PER_SECOND = 44
MAX_RETRY_AFTER = 120.0
MAX_BACKOFF = 30.0
BACKOFF_BASE = 0.5
# Seconds to wait for a connection / for a response.
TIMEOUT_SECONDS = (10.0, 60.0)
_BODY_ATTR = "_hotjar_body"
_HEAD_ATTR = "_hotjar_head"
# msgspec decodes the same JSON to the same Python objects, about 2x faster than json.
_decode = msgspec.json.Decoder().decode


class SlidingWindowLimiter:
    """At most `limit` requests in any one-second window, across threads.

    requests and singer-sdk have no client-side rate limiting; this is the whole of it.
    """

    def __init__(self, limit: int = REQUESTS_PER_SECOND, window: float = 1.0) -> None:
        self.limit = limit
        self.window = window
        self._sent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= self.window:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return
                wait = self.window - (now - self._sent[0])
            time.sleep(wait)


class RateLimitedSession(requests.Session):
    """A session whose every request first takes a slot from the shared limiter."""

    def __init__(self, limiter: SlidingWindowLimiter) -> None:
        super().__init__()
        self.limiter = limiter

    def send(self, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:  # type: ignore[override]
        self.limiter.acquire()
        return super().send(request, **kwargs)


def response_body(response: requests.Response) -> dict:
    """The parsed JSON body, parsed once per response."""
    body = getattr(response, _BODY_ATTR, None)
    if body is None:
        try:
            body = _decode(response.content)
        except msgspec.DecodeError as exc:
            raise ValueError(str(exc)) from None
        setattr(response, _BODY_ATTR, body)
    return t.cast("dict", body)


class RowHead(msgspec.Struct):
    """Of each listed item, only what paging needs; msgspec skips the rest unread."""

    created_time: t.Any = None


class PageHead(msgspec.Struct):
    """A list page's shape: a `results` list and the optional `next_cursor`."""

    results: list[RowHead]
    next_cursor: t.Any = None


_decode_head = msgspec.json.Decoder(PageHead).decode


def page_head(response: requests.Response) -> PageHead:
    """The page's shape, checked and decoded once per response (validate_response).

    Much cheaper than the whole body: the read-ahead threads page and stop with
    it, and keep the raw bytes, which the SDK's thread decodes when it emits them.
    """
    head = getattr(response, _HEAD_ATTR, None)
    if head is None:
        try:
            head = _decode_head(response.content)
        except msgspec.ValidationError as exc:
            raise ValueError(f"not a page of results ({str(exc)[:120]})") from None
        except msgspec.DecodeError as exc:
            raise ValueError(f"not valid JSON ({str(exc)[:120]})") from None
        setattr(response, _HEAD_ATTR, head)
    return t.cast("PageHead", head)


class Page(t.NamedTuple):
    """One page as read ahead: its raw JSON, and its responses' created_time."""

    content: bytes
    created_times: list[str]

    @property
    def size(self) -> int:
        return len(self.created_times)

    def rows(self) -> Iterator[dict]:
        """The page's responses, decoded now, created_time already normalised."""
        rows = _decode(self.content)["results"]
        for row, created in zip(rows, self.created_times, strict=True):
            row["created_time"] = created
            yield row


class HotjarCursorPaginator(BaseAPIPaginator[str | None]):
    """Follows the top-level `next_cursor` until it is null or the stream says stop."""

    def __init__(self, should_stop: t.Callable[[], bool]) -> None:
        super().__init__(None)
        self._should_stop = should_stop

    def get_next(self, response: requests.Response) -> str | None:
        return page_head(response).next_cursor or None

    def has_more(self, response: requests.Response) -> bool:
        return not self._should_stop() and self.get_next(response) is not None

    def continue_if_empty(self, response: requests.Response) -> bool:
        # An empty page that still carries a cursor is not the end of the list.
        return self.has_more(response)


class RetryAfterError(RetriableAPIError):
    """A 429: wait as long as the API asks (Retry-After), if it says."""

    def __init__(self, message: str, response: requests.Response, wait: float | None) -> None:
        super().__init__(message, response)
        self.wait = wait


class TokenRejectedError(RetriableAPIError):
    """A 401/403 on a token we believed valid: retry once, at once, with a new one."""


class NotFoundError(HotjarAPIError):
    """A 404: the site or survey does not exist (any more)."""


def backoff_seconds(attempt: int, base: float = BACKOFF_BASE) -> float:
    """Exponential backoff for the n-th retry (from 0): base, 2 x base, ... at most MAX_BACKOFF."""
    return min(base * 2**attempt, MAX_BACKOFF)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class HotjarStream(RESTStream[str | None]):
    """Base stream for the Hotjar API: auth, paging, rate limit, errors, retries."""

    timeout_seconds: t.ClassVar[tuple[float, float]] = TIMEOUT_SECONDS
    # Tries per request: `max_tries` for failures (5xx, timeouts, broken bodies),
    # and, separately, `max_rate_limited_tries` for 429s, where the API itself
    # says to wait: other clients on the same address share its limit.
    max_tries: t.ClassVar[int] = 8
    max_rate_limited_tries: t.ClassVar[int] = 20
    backoff_base: t.ClassVar[float] = BACKOFF_BASE

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._auth_retry = threading.local()
        # Replaces the plain session the SDK made in __init__.
        self._requests_session = RateLimitedSession(self._tap.rate_limiter)  # type: ignore[attr-defined]

    @property
    def url_base(self) -> str:
        return str(self.config["api_url"]).rstrip("/")

    @property
    def authenticator(self) -> HotjarAuthenticator:
        return HotjarAuthenticator.for_stream(self)

    @property
    def timeout(self) -> t.Any:
        return self.timeout_seconds

    def get_url_params(self, context: Context | None, next_page_token: str | None) -> dict[str, t.Any]:
        params: dict[str, t.Any] = {"limit": self.config["page_size"]}
        if next_page_token:
            params["cursor"] = next_page_token
        return params

    def get_new_paginator(self) -> HotjarCursorPaginator:
        return HotjarCursorPaginator(lambda: False)

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        yield from response_body(response)["results"]

    # Errors: classified here and nowhere else.

    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status < HTTPStatus.BAD_REQUEST:
            self._auth_retry.pending = False
            self._check_body(response)
            return
        path = self._request_path(response)
        detail = describe_error_body(response.content)
        if status in {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}:
            if not getattr(self._auth_retry, "pending", False):
                self._auth_retry.pending = True
                self.authenticator.invalidate(response.request.headers.get("Authorization"))
                msg = f"HTTP {status} for {path}{detail}; retrying with a new token"
                raise TokenRejectedError(msg, response)
            self._auth_retry.pending = False
            cause = (
                "no valid bearer token was accepted"
                if status == HTTPStatus.UNAUTHORIZED
                else "the API key is not valid or lacks permission for this resource"
            )
            msg = f"Hotjar answered HTTP {status} for {path} even with a new token: {cause}{detail}"
            raise HotjarAuthError(msg)
        self._auth_retry.pending = False
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            raise RetryAfterError(f"HTTP 429 (rate limited) for {path}{detail}", response, wait)
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(f"HTTP {status} for {path}{detail}", response)
        if status == HTTPStatus.NOT_FOUND:
            raise NotFoundError(f"HTTP 404 (not found) for {path}{detail}")
        raise HotjarAPIError(f"Hotjar refused the request {path} with HTTP {status}{detail}")

    def _check_body(self, response: requests.Response) -> None:
        try:
            page_head(response)
        except ValueError as exc:
            status, path = response.status_code, self._request_path(response)
            msg = f"HTTP {status} for {path} with a body that is {exc}"
            raise RetriableAPIError(msg, response) from None

    @staticmethod
    def _request_path(response: requests.Response) -> str:
        # The path only: query strings hold cursors, and never anything secret,
        # but they make messages long and unstable.
        return urllib.parse.urlsplit(response.url).path or "?"

    # Retries: 429 honours Retry-After; a rejected token is retried at once;
    # everything else backs off exponentially.

    def backoff_max_tries(self) -> int:
        # A ceiling only: the wait generator gives up first (each budget apart),
        # and a rejected token is retried once at most (see validate_response).
        return self.max_tries + self.max_rate_limited_tries + 1

    def backoff_wait_generator(self) -> Generator[float, t.Any, None]:  # type: ignore[override]
        failures = rate_limited = attempt = 0
        exc = yield 0.0
        while True:
            if isinstance(exc, RetryAfterError):
                rate_limited += 1
                if rate_limited >= self.max_rate_limited_tries:
                    return  # backoff gives up and raises `exc`
                attempt = rate_limited - 1
            elif not isinstance(exc, TokenRejectedError):
                failures += 1
                if failures >= self.max_tries:
                    return
                attempt = failures - 1
            exc = yield self._retry_wait(exc, attempt)

    def _retry_wait(self, exc: Exception, attempt: int) -> float:
        if isinstance(exc, TokenRejectedError):
            return 0.0
        if isinstance(exc, RetryAfterError) and exc.wait is not None:
            return exc.wait
        return backoff_seconds(attempt, self.backoff_base)

    def backoff_jitter(self, value: float) -> float:
        return value + random.uniform(0, value * 0.1)  # noqa: S311 - not cryptographic

    def backoff_handler(self, details: Details) -> None:
        exc = details.get("exception")
        reason = str(exc) if isinstance(exc, RetriableAPIError) else type(exc).__name__
        self.logger.warning(
            "Attempt %d failed (%s); retrying in %.1f s",
            details.get("tries"),
            reason,
            details.get("wait") or 0.0,
        )

    def response_error_message(self, response: requests.Response) -> str:
        return f"HTTP {response.status_code} for {self._request_path(response)}"

