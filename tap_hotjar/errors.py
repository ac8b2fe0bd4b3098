"""Errors that end a run with one clear line for the user."""

from __future__ import annotations

import json

from singer_sdk.exceptions import FatalAPIError

MAX_DETAIL = 200


class HotjarError(Exception):
    """An error the user can act on; printed as one line, without a traceback."""


class HotjarAuthError(HotjarError, FatalAPIError):
    """The API key was refused, or a token could not be obtained or used."""


class HotjarAPIError(HotjarError, FatalAPIError):
    """The API answered in a way the tap cannot continue from."""


class HotjarStateError(HotjarError):
    """The state passed with --state cannot be used."""


class HotjarInterrupted(BaseException):
    """SIGTERM / SIGINT arrived: the state was written, the sync did not finish.

    A BaseException, so that no `except Exception` on the way out swallows it; the
    command line turns it into one line and exit code 128 + the signal number.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def describe_error_body(content: str | bytes | None) -> str:
    """Summarise a Hotjar error body ({code, msg}) for a message, or ''."""
    if not content:
        return ""
    try:
        body = json.loads(content)
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [str(body[k]) for k in ("code", "msg") if body.get(k)]
    text = ": ".join(parts)[:MAX_DETAIL]
    return f" ({text})" if text else ""
