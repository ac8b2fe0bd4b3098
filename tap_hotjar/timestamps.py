"""One reading of timestamps for config, state and records."""

from __future__ import annotations

import datetime

import pendulum

# Fixed width, UTC: text order is time order, which singer-sdk's bookmark comparison
# (as JSON strings) relies on.
NORMAL_FORM = "%Y-%m-%dT%H:%M:%S.%f+00:00"


def normalize_timestamp(value: str) -> str:
    """An RFC 3339 date-time in one fixed-width UTC form; ValueError if it is none.

    The API mixes precisions and offsets (`...53Z`, `...53.287Z`, `+00:00`); RFC 3339
    allows a lower-case `t` and `z`, which pendulum does not.
    """
    if not isinstance(value, str):
        msg = f"not a date-time: {value!r}"
        raise ValueError(msg)
    try:
        instant = pendulum.parse(value.strip().upper())
    except (ValueError, TypeError, OverflowError):  # pendulum's ParserError is a ValueError
        msg = f"not a date-time: {value[:60]!r}"
        raise ValueError(msg) from None
    if not isinstance(instant, datetime.datetime):
        msg = f"not a date-time: {value[:60]!r}"
        raise ValueError(msg)
    return instant.astimezone(datetime.timezone.utc).strftime(NORMAL_FORM)


def is_timestamp(value: object) -> bool:
    try:
        normalize_timestamp(value)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True
