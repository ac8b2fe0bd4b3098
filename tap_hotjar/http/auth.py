"""OAuth client credentials for the Hotjar API: one token per run, shared by every thread."""

from __future__ import annotations

import datetime
import json
import logging
import re
import threading
import time
import typing as t
from http import HTTPStatus

import requests
from singer_sdk.authenticators import OAuthAuthenticator
from typing_extensions import override

from tap_hotjar.errors import HotjarAuthError, remember_secret
from tap_hotjar.http import policy

if t.TYPE_CHECKING:
    from tap_hotjar.http.pacing import PacedSession

TOKEN_PATH = "/v1/oauth/token"  # noqa: S105 - a path, not a password
# A token counts as stale this long before it expires: the SDK checks expiry with no
# margin, so a token could expire between the check and the request.
MAX_EXPIRY_MARGIN = 60.0
EXPIRY_MARGIN_FRACTION = 0.1
_TRAILING_COMMA = re.compile(rb",\s*([}\]])")

logger = logging.getLogger("tap-hotjar.auth")


class HotjarAuthenticator(OAuthAuthenticator):
    """singer-sdk's OAuth authenticator, with the token request made the way every request is.

    The SDK's own token request has a fixed 60 s timeout, is retried only over https and
    not on 429 or 5xx, and logs the error body; here it goes through the run's paced
    session and the project's retry policy like any other request.
    """

    def __init__(self, *, api_url: str, client_id: str, client_secret: str, session: PacedSession) -> None:
        super().__init__(auth_endpoint=f"{api_url}{TOKEN_PATH}", client_id=client_id, client_secret=client_secret)
        remember_secret(client_secret)
        self._paced_session = session
        self._lock = threading.Lock()

    @property
    @override
    def oauth_request_body(self) -> dict:
        return {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret}

    @override
    def is_token_valid(self) -> bool:
        if self.last_refreshed is None or not self.access_token:
            return False
        if not self.expires_in:
            return True
        margin = min(MAX_EXPIRY_MARGIN, self.expires_in * EXPIRY_MARGIN_FRACTION)
        age = (datetime.datetime.now(datetime.timezone.utc) - self.last_refreshed).total_seconds()
        return age < self.expires_in - margin

    def invalidate(self, rejected: str | None = None) -> None:
        """Forget the token so that the next request fetches a new one.

        With `rejected` (the Authorization header the API refused), only if that is
        still the current token: requests in flight on other threads may carry an
        older one, and a token fetched since must not be thrown away for them.
        """
        with self._lock:
            if rejected is not None and rejected != f"Bearer {self.access_token}":
                return
            self.access_token = None
            self.last_refreshed = None

    @override
    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        # Requests are made from several threads; one token request at a time.
        with self._lock:
            if not self.is_token_valid():
                self.update_access_token()
            request.headers["Authorization"] = f"Bearer {self.access_token}"
        return request

    def ensure_token(self) -> None:
        """Get a token now if there is none (so that wrong credentials fail before anything else)."""
        with self._lock:
            if not self.is_token_valid():
                self.update_access_token()

    @override
    def update_access_token(self) -> None:
        retries = policy.DEFAULT.budget()
        while True:
            answer, token = self._request_token()
            if token is not None:
                access_token, expires_in, requested_at = token
                remember_secret(access_token)
                self.access_token = access_token
                self.expires_in = expires_in
                self.last_refreshed = requested_at
                return
            if answer.status in {HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}:
                msg = (
                    "Hotjar refused the API credentials (client_id / client_secret) "
                    f"with HTTP {answer.status}{answer.detail}. Check the API key in the Hotjar app."
                )
                raise HotjarAuthError(msg)
            wait = retries.next_wait(answer)
            if wait is None:
                raise HotjarAuthError(self._give_up_message(answer, retries.attempts))
            logger.warning("Token request failed (%s); retrying in %.1f s", answer.describe(TOKEN_PATH), wait)
            time.sleep(wait)

    def _request_token(self) -> tuple[policy.Answer, tuple[str, int | None, datetime.datetime] | None]:
        requested_at = datetime.datetime.now(datetime.timezone.utc)
        try:
            response = self._paced_session.post(
                self.auth_endpoint,
                data=self.oauth_request_body,
                timeout=policy.DEFAULT.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return policy.unreachable(exc, self.auth_endpoint), None
        answer = policy.classify(
            response.status_code, response.content, response.headers.get("Retry-After"), reauthorized=True
        )
        if answer.verdict is not policy.Verdict.OK:
            return answer, None
        token = _parse_token(response.content)
        if token is None:
            return policy.broken_body(response.status_code, "not a token"), None
        return answer, (*token, requested_at)

    def _give_up_message(self, answer: policy.Answer, tries: int) -> str:
        if answer.status is None:
            return f"Could not reach the Hotjar token endpoint {self.auth_endpoint} after {tries} tries{answer.detail}"
        if answer.verdict is policy.Verdict.RETRY and answer.status < HTTPStatus.MULTIPLE_CHOICES:
            return (
                f"The Hotjar token endpoint {self.auth_endpoint} answered HTTP {answer.status} "
                f"without a valid access_token {tries} times"
            )
        return f"Could not get a Hotjar access token: {answer.describe(TOKEN_PATH)} (gave up after {tries} tries)"


def _parse_token(content: bytes) -> tuple[str, int | None] | None:
    """The access token and its lifetime from a token body, or None if it holds none.

    Accepts a body like the reference's own example, `{..., "expires_in":3600,}`: only a
    body that is not JSON is touched, and only if removing trailing commas makes it JSON.
    """
    try:
        body = json.loads(content)
    except ValueError:
        try:
            body = json.loads(_TRAILING_COMMA.sub(rb"\1", content))
        except ValueError:
            return None
    if not isinstance(body, dict):
        return None
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        return None
    expires_in = body.get("expires_in")
    try:
        lifetime = int(expires_in) if expires_in else None
    except (TypeError, ValueError):
        lifetime = None
    return token, lifetime
