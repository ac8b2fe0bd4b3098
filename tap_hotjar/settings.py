"""The tap's settings (shared with hotjar-user-lookup): schema, defaults and validation.

Validation here gives one message naming every problem and never a secret's value.
singer-sdk's own validation lets a malformed `format` through and words its errors
for developers; this is what users see instead.
"""

from __future__ import annotations

import copy
import json
import math
import os
import typing as t
import urllib.parse

from singer_sdk import typing as th
from singer_sdk.plugin_base import JSONSchemaValidator  # validates and fills in defaults

from tap_hotjar.errors import HotjarConfigError, HotjarStateError
from tap_hotjar.timestamps import is_start_date, is_timestamp

if t.TYPE_CHECKING:
    from jsonschema import ValidationError

TAP_NAME = "tap-hotjar"
ENV_PREFIX = "TAP_HOTJAR_"  # as singer-sdk derives it from the tap's name
ENV_CONFIG = "ENV"  # `--config ENV`: settings from TAP_HOTJAR_* variables only
DEFAULT_API_URL = "https://api.hotjar.io"
DEBUG_ENV = "TAP_HOTJAR_TRACEBACK"  # set to get a traceback instead of the one-line error
SECRET_SETTINGS = frozenset({"client_secret"})
# Seconds between the tap's progress lines (an environment variable, not a setting:
# it changes what is logged, not what is extracted).
PROGRESS_ENV = "TAP_HOTJAR_PROGRESS_SECONDS"
DEFAULT_PROGRESS_SECONDS = 30.0

CONFIG_SCHEMA: dict[str, t.Any] = th.PropertiesList(
    th.Property(
        "client_id",
        th.StringType(min_length=1),
        required=True,
        title="Client ID",
        description="Client ID of the Hotjar API key (Settings > API keys).",
    ),
    th.Property(
        "client_secret",
        th.StringType(min_length=1),
        required=True,
        secret=True,
        title="Client secret",
        description="Client secret of the Hotjar API key. Never logged.",
    ),
    th.Property(
        "site_ids",
        th.ArrayType(th.IntegerType(minimum=1)),
        required=True,
        title="Site IDs",
        description="IDs of the Hotjar sites to extract (Sites & Organizations page).",
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        title="Start date",
        description=(
            "RFC 3339 date-time. Responses created before it are neither requested past nor emitted. "
            "Default: everything."
        ),
    ),
    th.Property(
        "api_url",
        th.StringType(min_length=1),
        default=DEFAULT_API_URL,
        title="API URL",
        description="Base URL of the Hotjar API; change it only for a test server.",
    ),
    th.Property(
        "page_size",
        th.IntegerType(minimum=1, maximum=100),
        default=100,
        title="Page size",
        description="Items per list request (`limit`), 1 to 100 (the API's maximum).",
    ),
    th.Property(
        "organization_id",
        th.IntegerType(minimum=1),
        title="Organization ID",
        description="Hotjar organization ID, used only by `hotjar-user-lookup`.",
    ),
    th.Property(
        "reconcile_evidence_path",
        th.StringType(min_length=1),
        title="Reconciliation evidence path",
        description=(
            "Makes the run a reconciliation: bookmarks are ignored, every response is read, and a run that "
            "finishes writes what it found to this file, for `hotjar-reconcile` to remove from the warehouse "
            "what Hotjar no longer has. Default: an ordinary run."
        ),
    ),
).to_dict()

REQUIRED = frozenset(CONFIG_SCHEMA.get("required", []))


class ConfigCheck:
    """Validates configs against a schema (ours, plus the SDK's built-in settings)."""

    def __init__(self, schema: dict[str, t.Any]) -> None:
        self._validator = JSONSchemaValidator(schema)
        # The config last found valid, before and after defaults were filled in: the
        # command line validates a config file before singer-sdk logs anything, and the
        # tap it then starts does not validate the same config again.
        self._last_valid: tuple[str, dict[str, t.Any]] | None = None

    def normalized(self, config: t.Mapping[str, t.Any]) -> tuple[dict[str, t.Any], list[str]]:
        """A copy of `config` with defaults filled in, and every problem with it."""
        # An optional setting given as null (as some orchestrators write unset values)
        # means "unset", so that its default applies.
        result = {k: v for k, v in config.items() if v is not None or k in REQUIRED}
        key = _fingerprint(result)
        if key is not None and self._last_valid is not None and self._last_valid[0] == key:
            return copy.deepcopy(self._last_valid[1]), []
        errors = [_describe(e) for e in self._validator.iter_errors(result)]  # fills in defaults
        errors += semantic_errors(result)
        if not errors and key is not None:
            self._last_valid = (key, copy.deepcopy(result))
        return result, errors


def _fingerprint(config: dict[str, t.Any]) -> str | None:
    try:
        return json.dumps(config, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return None


def config_check(builtin: t.Callable[[dict[str, t.Any]], None] | None = None) -> ConfigCheck:
    """A checker for the tap's schema; `builtin` adds the SDK's built-in settings to a copy."""
    schema = copy.deepcopy(CONFIG_SCHEMA)
    if builtin is not None:
        builtin(schema)
    return ConfigCheck(schema)


def _describe(error: ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path) or "config"
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"{missing} is required"
    if error.absolute_path and str(error.absolute_path[0]) in SECRET_SETTINGS:
        return f"{path} must be a non-empty string"
    if error.validator == "type":
        return f"{path} must be of type {error.validator_value}, not {short(error.instance)}"
    if error.validator in {"minimum", "maximum"}:
        word = "at least" if error.validator == "minimum" else "at most"
        return f"{path} must be {word} {error.validator_value}, not {short(error.instance)}"
    if error.validator == "minLength":
        return f"{path} must not be empty"
    if error.validator == "minItems":
        return f"{path} must list at least {error.validator_value} item"
    return f"{path}: {error.message[:200]}"


def short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def api_url_errors(api_url: object) -> list[str]:
    """What is wrong with an api_url that JSON Schema lets through (hotjar-user-lookup uses it too)."""
    if not isinstance(api_url, str) or not api_url:
        return []
    parts = urllib.parse.urlsplit(api_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return [f"api_url must be an http(s) URL such as {DEFAULT_API_URL}, not {short(api_url)}"]
    if parts.query or parts.fragment:
        return [f"api_url must not have a query or fragment, not {short(api_url)}"]
    return []


def semantic_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """What JSON Schema alone lets through: formats, and duplicates."""
    errors = []
    start_date = config.get("start_date")
    if isinstance(start_date, str) and not is_start_date(start_date):
        errors.append(f"start_date must be an RFC 3339 date-time such as 2024-01-31T00:00:00Z, not {short(start_date)}")
    errors += api_url_errors(config.get("api_url"))
    site_ids = config.get("site_ids")
    if isinstance(site_ids, list) and not site_ids:
        errors.append("site_ids must list at least one site")
    elif isinstance(site_ids, list) and len(set(map(repr, site_ids))) != len(site_ids):
        errors.append("site_ids must not repeat a site")
    return errors


def check_state(state: object) -> None:
    """A state the SDK would misread, or crash on, is refused up front."""
    if not isinstance(state, dict):
        raise HotjarStateError(f"state must be a JSON object, not {type(state).__name__}")
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        raise HotjarStateError("state: 'bookmarks' must be an object")
    for stream_name, stream_state in bookmarks.items():
        if not isinstance(stream_state, dict):
            raise HotjarStateError(f"state: bookmarks.{stream_name} must be an object")
        partitions = stream_state.get("partitions", [])
        if not isinstance(partitions, list) or not all(
            isinstance(p, dict) and isinstance(p.get("context", {}), dict) for p in partitions
        ):
            msg = f"state: bookmarks.{stream_name}.partitions must be a list of objects with a 'context'"
            raise HotjarStateError(msg)
        for entry in [stream_state, *partitions]:
            value = entry.get("replication_key_value")
            if value is not None and not is_timestamp(str(value)):
                msg = f"state: bookmarks.{stream_name} has a bookmark that is not a timestamp: {short(value)}"
                raise HotjarStateError(msg)


def progress_interval(environ: t.Mapping[str, str] = os.environ) -> float:
    """Seconds between progress lines: $TAP_HOTJAR_PROGRESS_SECONDS, or 30."""
    raw = environ.get(PROGRESS_ENV, "").strip()
    if not raw:
        return DEFAULT_PROGRESS_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (0 < seconds < math.inf):
        msg = f"{PROGRESS_ENV} must be a number of seconds above 0 (default 30), not {short(raw)}"
        raise HotjarConfigError(msg)
    return seconds
