"""HTTP for `hotjar-user-lookup`: the tap's HTTP layer (pacing, token, retry policy), one subject at a time.

Imported only once the command line, config and subjects are valid: it loads
singer-sdk (through the authenticator), which a run that stops on a typo does not need.
"""

from __future__ import annotations

import dataclasses
import json
import time
import typing as t
from http import HTTPStatus

import requests

from tap_hotjar.errors import HotjarError
from tap_hotjar.http import HotjarConnection, policy, user_agent

if t.TYPE_CHECKING:
    from tap_hotjar.user_lookup.subjects import Subject

PROG = "hotjar-user-lookup"
CONTENT_TYPE = "application/json; charset=utf-8"

__all__ = ["CONTENT_TYPE", "HotjarError", "Outcome", "UserLookupClient", "user_agent"]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one subject: accepted or refused by Hotjar, or failed (no usable answer)."""

    status: t.Literal["accepted", "refused", "failed"]
    http_status: int | None
    reason: str
    # The API key or the connection is unusable: stop the batch after this subject.
    stop: bool = False

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


class UserLookupClient:
    """POST /v1/organizations/:organization_id/user-lookup, one subject at a time.

    Paced, authenticated and retried exactly as the tap's requests are (tap_hotjar.http):
    429 waits for Retry-After, 5xx and lost connections back off, a 401/403 gets one
    new token; 400, 404 and other refusals refuse that subject and the batch goes on.
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
        self.connection = HotjarConnection(
            api_url=api_url, client_id=client_id, client_secret=client_secret, product=PROG
        )
        self.api_url = self.connection.api_url
        self.path = f"/v1/organizations/{organization_id}/user-lookup"
        self.url = f"{self.api_url}{self.path}"
        self.token_url = self.connection.authenticator.auth_endpoint
        self._notify = notify
        self._sleep = sleep

    @property
    def authenticator(self) -> t.Any:
        return self.connection.authenticator

    @property
    def access_token(self) -> str | None:
        return self.connection.access_token

    def ensure_token(self) -> None:
        """Get a token now, so that wrong credentials stop the run before any lookup."""
        self.connection.authenticator.ensure_token()

    def prepare(self, subject: Subject, *, delete: bool) -> requests.PreparedRequest:
        """The request exactly as it goes on the wire, less the Authorization header."""
        body = json.dumps(subject.body(delete=delete), ensure_ascii=False).encode("utf-8")
        request = requests.Request("POST", self.url, data=body, headers={"Content-Type": CONTENT_TYPE})
        return self.connection.session.prepare_request(request)

    def send(self, subject: Subject, *, delete: bool) -> Outcome:
        """Send one subject; HotjarAuthError when no access token can be had."""
        retries = policy.DEFAULT.budget()
        while True:
            answer = self._send_once(subject, delete=delete, reauthorized=retries.reauthorized)
            if answer.verdict is policy.Verdict.OK:
                return Outcome("accepted", answer.status, _status_text(answer))
            if answer.verdict is policy.Verdict.DENIED:
                cause = (
                    "no bearer token was accepted"
                    if answer.status == HTTPStatus.UNAUTHORIZED
                    else "the API key is not valid for this organization or lacks the User Lookup permission"
                )
                reason = f"{_status_text(answer)} even with a new token: {cause}"
                return Outcome("refused", answer.status, reason, stop=True)
            if answer.verdict in {policy.Verdict.NOT_FOUND, policy.Verdict.REFUSED}:
                return Outcome("refused", answer.status, _status_text(answer))  # this subject only
            wait = retries.next_wait(answer)
            if answer.verdict is policy.Verdict.REAUTH:
                self.connection.authenticator.invalidate()
                continue
            if wait is None:
                # Hotjar never said no: the request may even have been processed.
                reason = f"{_status_text(answer)}; gave up after {retries.attempts} attempts"
                return Outcome("failed", answer.status, reason, stop=True)
            self._notify(f"attempt {retries.attempts} failed: {_status_text(answer)}; retrying in {wait:.1f} s")
            self._sleep(wait)

    def _send_once(self, subject: Subject, *, delete: bool, reauthorized: bool) -> policy.Answer:
        prepared = self.prepare(subject, delete=delete)
        self.connection.authenticator.authenticate_request(prepared)
        try:
            response = self.connection.session.send(prepared, timeout=policy.DEFAULT.timeout, allow_redirects=False)
        except requests.RequestException as exc:  # connection, timeout, a broken answer
            return policy.unreachable(exc, self.url)
        return policy.classify(
            response.status_code, response.content, response.headers.get("Retry-After"), reauthorized=reauthorized
        )


def _status_text(answer: policy.Answer) -> str:
    """`HTTP 202 Accepted`, `HTTP 400 (code: msg)` (Hotjar's own words when it gave any), or why there was no answer."""
    if answer.status is None:
        return answer.detail.strip().removeprefix("(").removesuffix(")")
    if answer.detail and answer.verdict is not policy.Verdict.OK:
        return f"HTTP {answer.status}{answer.detail}"
    try:
        return f"HTTP {answer.status} {HTTPStatus(answer.status).phrase}"
    except ValueError:
        return f"HTTP {answer.status}"
