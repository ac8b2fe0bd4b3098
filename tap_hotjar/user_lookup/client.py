"""HTTP for `hotjar-user-lookup`: the tap's authenticator, rate limiter and retry rules.

Imported only once the command line, config and subjects are valid: it loads
singer-sdk, which a run that stops on a typo does not need.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import time
import typing as t
from http import HTTPStatus

import requests

from tap_hotjar.auth import HotjarAuthenticator
from tap_hotjar.client import (
    TIMEOUT_SECONDS,
    RateLimitedSession,
    SlidingWindowLimiter,
    backoff_seconds,
    parse_retry_after,
)
from tap_hotjar.errors import HotjarError, describe_error_body

if t.TYPE_CHECKING:
    from tap_hotjar.user_lookup.subjects import Subject

CONTENT_TYPE = "application/json; charset=utf-8"
MAX_TRIES = 6

__all__ = ["CONTENT_TYPE", "HotjarError", "Outcome", "UserLookupClient", "user_agent"]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What Hotjar answered for one subject."""

    accepted: bool
    http_status: int | None
    reason: str
    # The API key or the connection is unusable: stop the batch after this subject.
    stop: bool = False


def user_agent() -> str:
    try:
        version = importlib.metadata.version("tap-hotjar")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"hotjar-user-lookup/{version} (tap-hotjar)"


class UserLookupClient:
    """POST /v1/organizations/:organization_id/user-lookup, one subject at a time.

    Rate-limited like the tap (SlidingWindowLimiter), with the tap's authenticator,
    and retried like the tap: 429 waits for Retry-After, 5xx and connection errors
    back off exponentially, a 401/403 gets one new token.
    """

    def __init__(
        self,
        *,
        api_url: str,
        organization_id: int,
        client_id: str,
        client_secret: str,
        notify: t.Callable[[str], None],
        sleep: t.Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_url = api_url
        self.url = f"{api_url}/v1/organizations/{organization_id}/user-lookup"
        self.token_url = f"{api_url}/v1/oauth/token"
        limiter = SlidingWindowLimiter()  # token requests count against the limit too
        self.session = RateLimitedSession(limiter)
        self.session.headers["User-Agent"] = user_agent()
        self.authenticator = HotjarAuthenticator(
            api_url=api_url,
            client_id=client_id,
            client_secret=client_secret,
            limiter=limiter,
        )
        self._notify = notify
        self._sleep = sleep

    @property
    def access_token(self) -> str | None:
        return self.authenticator.access_token

    def ensure_token(self) -> None:
        """Get a token now, so that wrong credentials stop the run before any lookup."""
        if not self.authenticator.is_token_valid():
            self.authenticator.update_access_token()

    def prepare(self, subject: Subject, *, delete: bool) -> requests.PreparedRequest:
        """The request exactly as it goes on the wire, less the Authorization header."""
        body = json.dumps(subject.body(delete=delete), ensure_ascii=False).encode("utf-8")
        request = requests.Request(
            "POST", self.url, data=body, headers={"Content-Type": CONTENT_TYPE}
        )
        return self.session.prepare_request(request)

    def send(self, subject: Subject, *, delete: bool) -> Outcome:
        """Send one subject; HotjarAuthError when no access token can be had."""
        refreshed = False
        failure, status = "", None
        for attempt in range(1, MAX_TRIES + 1):
            prepared = self.prepare(subject, delete=delete)
            self.authenticator.authenticate_request(prepared)
            wait = backoff_seconds(attempt - 1)
            try:
                response = self.session.send(prepared, timeout=TIMEOUT_SECONDS, allow_redirects=False)
            except requests.RequestException as exc:  # connection, timeout, broken response
                failure, status = f"could not reach {self.api_url} ({type(exc).__name__})", None
            else:
                status = response.status_code
                detail = describe_error_body(response.content)
                if HTTPStatus.OK <= status < HTTPStatus.MULTIPLE_CHOICES:
                    return Outcome(True, status, f"HTTP {status} {_phrase(status)}".rstrip())
                if status in {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}:
                    if not refreshed:
                        # The reference answers 403 for an invalid token (revoked, expired).
                        refreshed = True
                        self.authenticator.invalidate()
                        continue
                    cause = (
                        "no bearer token was accepted"
                        if status == HTTPStatus.UNAUTHORIZED
                        else "the API key is not valid for this organization or lacks "
                        "the User Lookup permission"
                    )
                    reason = f"HTTP {status}{detail} even with a new token: {cause}"
                    return Outcome(False, status, reason, stop=True)
                if status == HTTPStatus.TOO_MANY_REQUESTS:
                    wait = parse_retry_after(response.headers.get("Retry-After")) or wait
                    failure = f"HTTP 429 (rate limited){detail}"
                elif status >= HTTPStatus.INTERNAL_SERVER_ERROR:
                    failure = f"HTTP {status}{detail}"
                else:
                    # 400, 404, ...: Hotjar refused this subject; the batch goes on.
                    return Outcome(False, status, f"HTTP {status}{detail}")
            if attempt < MAX_TRIES:
                self._notify(
                    f"attempt {attempt} of {MAX_TRIES} failed: {failure}; retrying in {wait:.1f} s"
                )
                self._sleep(wait)
        return Outcome(False, status, f"{failure}; gave up after {MAX_TRIES} attempts", stop=True)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
