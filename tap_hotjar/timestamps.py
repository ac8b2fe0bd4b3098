"""One reading of timestamps for config, state and records."""

from __future__ import annotations

import datetime
import re

import pendulum

# Fixed width, UTC: text order is time order, which singer-sdk's bookmark comparison
# (as JSON strings) relies on.
NORMAL_FORM = "%Y-%m-%dT%H:%M:%S.%f+00:00"
# RFC 3339 section 5.6, as the reference promises it and as JSON Schema's `date-time`
# format checks it: a date, `T`, a time and an offset (upper or lower case). pendulum
# alone would also take a date without a time, ISO 8601's basic format and more, which
# a schema-valid record must not hold.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def normalize_timestamp(value: str) -> str:
    """An RFC 3339 date-time in one fixed-width UTC form; ValueError if it is none.

    The API mixes precisions and offsets (`...53Z`, `...53.287Z`, `+00:00`).
    """
    if not isinstance(value, str) or not _RFC3339.fullmatch(value.strip()):
        msg = f"not an RFC 3339 date-time: {str(value)[:60]!r}"
        raise ValueError(msg)
    return _normal(value.strip().upper())


def normalize_start_date(value: str) -> str:
    """start_date: an RFC 3339 date-time, or a date alone (midnight UTC), in the fixed form."""
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        return _normal(value.strip() + "T00:00:00Z")
    return normalize_timestamp(value)


def _normal(value: str) -> str:
    try:
        instant = pendulum.parse(value)
    except (ValueError, TypeError, OverflowError):  # pendulum's ParserError is a ValueError
        msg = f"not a date-time: {value[:60]!r}"
        raise ValueError(msg) from None
    if not isinstance(instant, datetime.datetime):
        msg = f"not a date-time: {value[:60]!r}"
        raise ValueError(msg)
    return instant.astimezone(datetime.timezone.utc).strftime(NORMAL_FORM)


def is_timestamp(value: object) -> bool:
    """Whether `value` is an RFC 3339 date-time (JSON Schema's `date-time`)."""
    try:
        normalize_timestamp(value)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


def is_start_date(value: object) -> bool:
    try:
        normalize_start_date(value)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True
