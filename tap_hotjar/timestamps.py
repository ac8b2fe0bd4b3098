"""One reading of timestamps for config, state and records."""

from __future__ import annotations

import datetime
import re

# Fixed width, UTC: text order is time order, which singer-sdk's bookmark comparison
# (as JSON strings) relies on.
NORMAL_FORM = "%Y-%m-%dT%H:%M:%S.%f+00:00"
# RFC 3339 section 5.6, as the reference promises it and as JSON Schema's `date-time`
# format checks it: a date, `T`, a time and an offset (upper or lower case). A parser
# of ISO 8601 alone would also take a date without a time, the basic format and more,
# which a schema-valid record must not hold. The parts are then read by the standard
# library's C parser: this runs for every response (pendulum.parse took 20 us a call,
# 8% of the tap's CPU; fromisoformat 0.3 us).
_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def normalize_timestamp(value: str) -> str:
    """An RFC 3339 date-time in one fixed-width UTC form; ValueError if it is none.

    The API mixes precisions and offsets (`...53Z`, `...53.287Z`, `+00:00`).
    """
    match = _RFC3339.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        msg = f"not an RFC 3339 date-time: {str(value)[:60]!r}"
        raise ValueError(msg)
    date, time, fraction, offset = match.groups()
    # Six digits of fraction (more are cut: microseconds are the precision kept) and
    # +00:00 for Z: the forms every Python from 3.10 reads.
    fraction = ((fraction or "") + "000000")[:6]
    offset = "+00:00" if offset in {"Z", "z"} else offset
    try:
        instant = datetime.datetime.fromisoformat(f"{date}T{time}.{fraction}{offset}")
    except ValueError:  # 2024-02-30, 25:00, an offset of 24 hours
        msg = f"not a date-time: {value[:60]!r}"
        raise ValueError(msg) from None
    return instant.astimezone(datetime.timezone.utc).isoformat(timespec="microseconds")


def normalize_start_date(value: str) -> str:
    """start_date: an RFC 3339 date-time, or a date alone (midnight UTC), in the fixed form."""
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        return normalize_timestamp(value.strip() + "T00:00:00Z")
    return normalize_timestamp(value)


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
