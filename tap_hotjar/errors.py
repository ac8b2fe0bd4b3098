"""Errors that end a run with one clear line for the user, and the one redaction of secrets."""

from __future__ import annotations

import typing as t

from singer_sdk.exceptions import FatalAPIError

if t.TYPE_CHECKING:
    from collections.abc import Iterable

MASK = "********"
# Exit statuses of both commands (tap-hotjar, hotjar-user-lookup).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # interrupted without a signal number to report (KeyboardInterrupt)
# Masking a very short "secret" would garble every message and hide nothing.
MIN_SECRET_TO_MASK = 4


class HotjarError(Exception):
    """An error the user can act on; printed as one line, without a traceback."""


class HotjarAuthError(HotjarError, FatalAPIError):
    """The API key was refused, or a token could not be obtained or used."""


class HotjarAPIError(HotjarError, FatalAPIError):
    """The API answered in a way the tap cannot continue from."""


class HotjarConfigError(HotjarError):
    """The configuration is missing something or holds a wrong value."""


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


# The secrets this process has seen (client secrets read from config, access tokens
# issued): every message that leaves the process is redacted against all of them.
_SECRETS: set[str] = set()


def remember_secret(value: object) -> None:
    """Mask `value` wherever `redact` is applied from now on."""
    if isinstance(value, str) and len(value) >= MIN_SECRET_TO_MASK:
        _SECRETS.add(value)


def redact(text: str, secrets: Iterable[object] = ()) -> str:
    """`text` with every known secret (and each of `secrets`) replaced by the mask."""
    for secret in sorted({*_SECRETS, *(s for s in secrets if isinstance(s, str))}, key=len, reverse=True):
        if len(secret) >= MIN_SECRET_TO_MASK:
            text = text.replace(secret, MASK)
    return text
