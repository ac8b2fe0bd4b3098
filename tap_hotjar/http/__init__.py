"""The HTTP layer: what every request to the Hotjar API goes through.

- `policy`: what a status means (retry, wait, new token, give up) and how long to wait;
- `pacing`: evenly spaced requests under the API's limit, and the latency they meet;
- `auth`: OAuth client credentials, one token per run;
- `pages`: the shape of list pages and the cursor that links them.

`HotjarConnection` bundles one of each for a run: the tap's streams and
hotjar-user-lookup each build one from their settings.
"""

from __future__ import annotations

import importlib.metadata

from tap_hotjar.http.auth import HotjarAuthenticator
from tap_hotjar.http.pacing import REQUESTS_PER_SECOND, LatencyMeter, PacedSession, Pacer

# Connections kept alive per session: one per read-ahead thread at most (streams/read_ahead.py).
POOL_SIZE = 66


def user_agent(product: str) -> str:
    """`product/version (tap-hotjar)`, so that Hotjar can tell our requests apart."""
    try:
        version = importlib.metadata.version("tap-hotjar")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"{product}/{version} (tap-hotjar)"


class HotjarConnection:
    """One run's access to the API: a paced session, its latency and one shared token."""

    def __init__(
        self,
        *,
        api_url: str,
        client_id: str,
        client_secret: str,
        product: str = "tap-hotjar",
        rate: float = REQUESTS_PER_SECOND,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.pacer = Pacer(rate)
        self.latency = LatencyMeter()
        self.session = PacedSession(self.pacer, self.latency, user_agent(product), POOL_SIZE)
        # The token request has a session of its own (the same pacer): singer-sdk makes
        # the authenticator the default auth of the session its streams use.
        self.authenticator = HotjarAuthenticator(
            api_url=self.api_url,
            client_id=client_id,
            client_secret=client_secret,
            session=PacedSession(self.pacer, self.latency, user_agent(product)),
        )

    @property
    def access_token(self) -> str | None:
        return self.authenticator.access_token


__all__ = ["HotjarAuthenticator", "HotjarConnection", "user_agent"]
