"""What an answer from the Hotjar API means, and how long to wait before trying again.

One policy for every request this project makes: the tap's list requests (through
singer-sdk's request path, see `streams/base.py`), the token request (`auth.py`) and
hotjar-user-lookup's lookups (`user_lookup/client.py`). Each caller turns a `Verdict`
into its own action (an exception for the SDK's retry decorator, a loop for the
others), but none decides on its own what a status means or how long to wait.
"""

from __future__ import annotations

import dataclasses
import email.utils
import enum
import json
import time
import urllib.parse
from http import HTTPStatus

import requests

MAX_DETAIL = 200


class Verdict(enum.Enum):
    """What to do with an answer."""

    OK = "ok"
    RETRY = "retry"  # 5xx, a broken body, a lost connection: back off and try again
    WAIT = "wait"  # 429: wait as long as Retry-After says (or back off) and try again
    REAUTH = "reauth"  # 401/403 on a token we believed valid: a new token, at once, once
    DENIED = "denied"  # 401/403 even with a new token: the API key cannot do this
    NOT_FOUND = "not_found"  # 404: the site, survey or organization does not exist (any more)
    REFUSED = "refused"  # any other answer: this request will never succeed as it is


@dataclasses.dataclass(frozen=True)
class Answer:
    """The verdict on one HTTP answer, with what a message needs to say about it."""

    verdict: Verdict
    status: int | None
    detail: str = ""  # " (code: msg)" from Hotjar's error body, or ""
    retry_after: float | None = None  # seconds, from a 429's Retry-After

    def describe(self, what: str) -> str:
        """`what` (e.g. a path) and the answer, in words a user can act on."""
        if self.status is None:
            return f"no answer for {what}{self.detail}"
        if self.verdict is Verdict.WAIT:
            return f"HTTP 429 (rate limited) for {what}{self.detail}"
        if self.verdict is Verdict.NOT_FOUND:
            return f"HTTP 404 (not found) for {what}{self.detail}"
        if self.verdict is Verdict.DENIED:
            cause = (
                "no valid bearer token was accepted"
                if self.status == HTTPStatus.UNAUTHORIZED
                else "the API key is not valid or lacks permission for this resource"
            )
            return f"Hotjar answered HTTP {self.status} for {what} even with a new token: {cause}{self.detail}"
        if self.verdict is Verdict.REFUSED:
            return f"Hotjar refused the request {what} with HTTP {self.status}{_phrase(self.status)}{self.detail}"
        return f"HTTP {self.status} for {what}{self.detail}"


def classify(
    status: int, content: bytes | str | None = b"", retry_after: str | None = None, *, reauthorized: bool
) -> Answer:
    """The verdict on an answer with this status (the body is read only on errors).

    `reauthorized`: the request already carried a token fetched after a refusal (or,
    for the token request itself, there is no token to renew).
    """
    if HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES:
        return Answer(Verdict.OK, status)
    detail = describe_error_body(content)
    if status in {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}:
        return Answer(Verdict.DENIED if reauthorized else Verdict.REAUTH, status, detail)
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return Answer(Verdict.WAIT, status, detail, DEFAULT.retry_after(retry_after))
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return Answer(Verdict.RETRY, status, detail)
    if status == HTTPStatus.NOT_FOUND:
        return Answer(Verdict.NOT_FOUND, status, detail)
    return Answer(Verdict.REFUSED, status, detail)


def unreachable(exc: BaseException, url: str) -> Answer:
    """The verdict on a request that got no (complete) answer: refused, reset, timed out."""
    return Answer(Verdict.RETRY, None, f" ({network_failure(exc, url)})")


def network_failure(exc: BaseException, url: str) -> str:
    """What went wrong on the network, in words (no exception class names)."""
    host = urllib.parse.urlsplit(url).netloc or url
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"could not connect to {host} within {DEFAULT.connect_timeout:g} s"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"no answer from {host} within {DEFAULT.read_timeout:g} s"
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return f"the connection to {host} broke in the middle of the answer"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"the TLS handshake with {host} failed"
    if isinstance(exc, (requests.exceptions.ConnectionError, ConnectionError)):
        if "RemoteDisconnected" in str(exc) or "Connection aborted" in str(exc):
            return f"{host} closed the connection without answering"
        return f"could not connect to {host}"
    return f"the request to {host} failed"


def broken_body(status: int, problem: str) -> Answer:
    """The verdict on a 2xx answer whose body is not what the endpoint documents."""
    return Answer(Verdict.RETRY, status, f" with a body that is {problem}")


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. Each retried verdict has a budget of its own."""

    backoff_base: float = 0.5  # seconds before the first retry; doubles each time
    max_backoff: float = 30.0
    max_retry_after: float = 120.0  # a longer Retry-After is cut to this
    max_tries: int = 8  # per request, for RETRY (5xx, timeouts, resets, broken bodies)
    max_rate_limited_tries: int = 20  # per request, for WAIT (429): other clients share the limit
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)

    def backoff(self, attempt: int) -> float:
        """Seconds before the n-th retry (from 0): base, 2 x base, ... at most max_backoff."""
        return min(self.backoff_base * 2**attempt, self.max_backoff)

    def retry_after(self, value: str | None) -> float | None:
        """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
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
        return min(max(seconds, 0.0), self.max_retry_after)

    def budget(self) -> RetryBudget:
        return RetryBudget(self)


class RetryBudget:
    """The retries of one request: `next_wait(answer)` is the wait before the next try, or None to give up."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self.failures = 0
        self.rate_limited = 0
        self.reauthorized = False

    def next_wait(self, answer: Answer) -> float | None:
        policy = self._policy
        if answer.verdict is Verdict.REAUTH:
            if self.reauthorized:
                return None
            self.reauthorized = True
            return 0.0
        if answer.verdict is Verdict.WAIT:
            self.rate_limited += 1
            if self.rate_limited >= policy.max_rate_limited_tries:
                return None
            wait = answer.retry_after
            return wait if wait is not None else policy.backoff(self.rate_limited - 1)
        if answer.verdict is Verdict.RETRY:
            self.failures += 1
            if self.failures >= policy.max_tries:
                return None
            return policy.backoff(self.failures - 1)
        return None

    @property
    def attempts(self) -> int:
        """Attempts judged so far (each retried or given up on)."""
        return self.failures + self.rate_limited + int(self.reauthorized)

    def ceiling(self) -> int:
        """An upper bound of tries, for retry helpers that want one (the budget gives up first)."""
        return self._policy.max_tries + self._policy.max_rate_limited_tries + 1


# Read at call time by every user, so that tests (and nothing else) can swap it.
DEFAULT = RetryPolicy()


def describe_error_body(content: bytes | str | None) -> str:
    """Summarise a Hotjar error body ({code, msg}) for a message, or ''."""
    if not content:
        return ""
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [str(body[k]) for k in ("code", "msg") if body.get(k)]
    text = ": ".join(parts)[:MAX_DETAIL]
    return f" ({text})" if text else ""


def _phrase(status: int) -> str:
    try:
        return f" ({HTTPStatus(status).phrase})"
    except ValueError:
        return ""
