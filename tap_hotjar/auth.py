"""OAuth client-credentials authentication for the Hotjar API."""

from __future__ import annotations

import json
import re
import threading
import time
import typing as t

import requests
import urllib3
from singer_sdk.authenticators import OAuthAuthenticator
from singer_sdk.helpers._util import utc_now

from tap_hotjar.errors import HotjarAuthError, describe_error_body

if t.TYPE_CHECKING:
    from singer_sdk.streams import RESTStream

    from tap_hotjar.client import SlidingWindowLimiter

# Seconds before expiry at which a token counts as stale. The SDK checks expiry
# with no margin, so a token could expire between the check and the request.
MAX_EXPIRY_MARGIN = 60.0
EXPIRY_MARGIN_FRACTION = 0.1


_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def _tolerate_trailing_comma(response: requests.Response, *args: t.Any, **kwargs: t.Any) -> requests.Response:
    """Accept a token body like the reference's own example, `{..., "expires_in":3600,}`.

    Only a body that is not JSON is touched, and only if removing trailing commas
    makes it JSON; anything else is left for the usual error handling.
    """
    try:
        json.loads(response.content)
    except ValueError:
        fixed = _TRAILING_COMMA.sub(r"\1", response.text)
        try:
            json.loads(fixed)
        except ValueError:
            return response
        response._content = fixed.encode("utf-8")  # requests has no setter for the body
    return response


class HotjarAuthenticator(OAuthAuthenticator):
    """One token per run, shared by every stream (see `for_stream`)."""

    _instance: t.ClassVar[HotjarAuthenticator | None] = None
    _instance_key: t.ClassVar[tuple | None] = None
    # Retries of the token request itself (429, 5xx, connection errors), by
    # urllib3: waits 0, 1, 2, 4, 8, 16 s with the defaults, 31 s in all.
    token_retries: t.ClassVar[int] = 6
    token_backoff_factor: t.ClassVar[float] = 0.5

    def __init__(
        self,
        *,
        api_url: str,
        client_id: str,
        client_secret: str,
        limiter: SlidingWindowLimiter | None = None,
    ) -> None:
        super().__init__(
            auth_endpoint=f"{api_url}/v1/oauth/token",
            client_id=client_id,
            client_secret=client_secret,
        )
        # The SDK only retries the token request over https, and not on 429/5xx.
        retry = urllib3.Retry(
            total=self.token_retries,
            backoff_factor=self.token_backoff_factor,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=["POST"],
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = requests.adapters.HTTPAdapter(max_retries=retry)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.hooks["response"].append(_tolerate_trailing_comma)
        self._lock = threading.Lock()
        self._limiter = limiter

    @classmethod
    def for_stream(cls, stream: RESTStream) -> HotjarAuthenticator:
        """Return the run's shared authenticator, creating it on first use."""
        config = stream.config
        key = (config["api_url"], config["client_id"], config["client_secret"])
        if cls._instance is None or cls._instance_key != key:
            cls._instance = cls(
                api_url=config["api_url"],
                client_id=config["client_id"],
                client_secret=config["client_secret"],
                limiter=getattr(stream._tap, "rate_limiter", None),
            )
            cls._instance_key = key
        return cls._instance

    @property
    def oauth_request_body(self) -> dict:
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }

    def is_token_valid(self) -> bool:
        if self.last_refreshed is None or self.access_token is None:
            return False
        if not self.expires_in:
            return True
        margin = min(MAX_EXPIRY_MARGIN, self.expires_in * EXPIRY_MARGIN_FRACTION)
        age = (utc_now() - self.last_refreshed).total_seconds()
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

    def authenticate_request(
        self,
        request: requests.PreparedRequest,
    ) -> requests.PreparedRequest:
        # Streams may request from several threads; one refresh at a time.
        with self._lock:
            if not self.is_token_valid():
                self.update_access_token()
            request.headers["Authorization"] = f"Bearer {self.access_token}"
        return request

    def update_access_token(self) -> None:
        # The SDK authenticates while *preparing* each request, outside the
        # stream's retries, so every retry of the token request happens here:
        # urllib3 retries 429, 5xx and connection errors (see __init__), this loop
        # a 200 whose body is not a token.
        for attempt in range(self.token_retries + 1):
            if attempt:
                time.sleep(self.token_backoff_factor * 2 ** (attempt - 1))
            if self._limiter is not None:
                self._limiter.acquire()  # token requests count against the limit too
            try:
                super().update_access_token()
            except RuntimeError as exc:
                raise HotjarAuthError(self._token_failure_message(exc)) from None
            except (ValueError, KeyError, TypeError):
                # Not JSON (requests' JSONDecodeError is a ValueError too), or no
                # access_token in it: a broken answer, not a refusal.
                self.access_token = None
                self.last_refreshed = None
                continue
            except requests.exceptions.RequestException as exc:
                msg = (
                    f"Could not reach the Hotjar token endpoint {self.auth_endpoint} "
                    f"after {self.token_retries} retries: {type(exc).__name__}"
                )
                raise HotjarAuthError(msg) from None
            if isinstance(self.access_token, str) and self.access_token:
                return
        msg = (
            f"The Hotjar token endpoint {self.auth_endpoint} answered HTTP 200 without "
            f"a valid access_token {self.token_retries + 1} times"
        )
        raise HotjarAuthError(msg)

    def handle_error(self, *, content: str, status_code: int | None) -> None:
        # The SDK logs the raw body here; keep it for the exception instead.
        self._last_error = (status_code, content)

    def _token_failure_message(self, exc: RuntimeError) -> str:
        status, content = getattr(self, "_last_error", (None, ""))
        detail = describe_error_body(content)
        if status in {400, 401, 403}:
            return (
                "Hotjar refused the API credentials (client_id / client_secret) "
                f"with HTTP {status}{detail}. Check the API key in the Hotjar app."
            )
        return f"Could not get a Hotjar access token: HTTP {status}{detail}"
