"""tap-hotjar: the Tap class, its settings and its command line."""

from __future__ import annotations

import logging
import typing as t
import urllib.parse

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities
from singer_sdk.plugin_base import JSONSchemaValidator  # fills in defaults

from tap_hotjar.client import SlidingWindowLimiter
from tap_hotjar.errors import HotjarError, HotjarInterrupted, HotjarStateError
from tap_hotjar.streams import STREAM_TYPES, normalize_timestamp

if t.TYPE_CHECKING:
    from types import FrameType

    from jsonschema import ValidationError
    from singer_sdk.streams import Stream

SECRET_SETTINGS = frozenset({"client_secret"})


class _ResumableByDesign(logging.Filter):
    """Drop the SDK's "progress is not resumable" warning for unsorted streams.

    It is logged once per survey, and it is not true here: a survey's bookmark
    only moves when the survey is read to its stop point, so an interrupted survey
    is read again from its old bookmark (see README, "Incremental sync").
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Stream is assumed to be unsorted")


_RESUMABLE_BY_DESIGN = _ResumableByDesign()


class HotjarConfigError(HotjarError):
    """The configuration is missing something or holds a wrong value."""


class TapHotjar(Tap):
    """Singer tap for Hotjar surveys, questions, responses and answers."""

    name = "tap-hotjar"
    package_name = "tap-hotjar"
    # singer-sdk's msgspec-based writer: same Singer JSON lines, encoded faster.
    message_writer_class = MsgSpecWriter
    # No BATCH: survey_answers is written record by record by survey_responses,
    # which batch files could not follow.
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        c for c in Tap.capabilities if c != PluginCapabilities.BATCH
    ]

    config_jsonschema = th.PropertiesList(
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
                "RFC 3339 date-time. Responses created before it are neither requested "
                "past nor emitted. Default: everything."
            ),
        ),
        th.Property(
            "api_url",
            th.StringType(min_length=1),
            default="https://api.hotjar.io",
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
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        # Shared by every stream so that the whole run stays under the API's limit.
        self.rate_limiter = SlidingWindowLimiter()
        logging.getLogger("singer_sdk").addFilter(_RESUMABLE_BY_DESIGN)  # a no-op when present
        super().__init__(*args, **kwargs)

    def discover_streams(self) -> list[Stream]:
        return [stream_type(self) for stream_type in STREAM_TYPES]

    # Validation: one message naming every problem, never a secret's value.

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        errors = config_errors(self._config)
        if errors and raise_errors:
            raise HotjarConfigError("invalid config: " + "; ".join(errors))
        return errors

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        # singer-sdk writes the state and exits 0; an unfinished sync must not
        # look finished to the orchestrator. cli.py turns this into one line and
        # exit status 128 + signum.
        try:
            self._state_writer.write_state(self.state)
        finally:
            raise HotjarInterrupted(signum)

    def load_state(self, state: dict[str, t.Any]) -> None:
        check_state(state)
        super().load_state(state)


def config_errors(config: dict[str, t.Any]) -> list[str]:
    """Every problem with a config (never a secret's value); fills in defaults in place."""
    # An optional setting given as null (as some orchestrators write unset
    # values) means "unset", so that its default applies.
    required = set(TapHotjar.config_jsonschema.get("required", []))
    for key in [k for k, v in config.items() if v is None and k not in required]:
        del config[key]
    schema = TapHotjar.config_jsonschema
    TapHotjar.append_builtin_config(schema)
    errors = [_describe(e) for e in JSONSchemaValidator(schema).iter_errors(config)]
    return errors + _semantic_errors(config)


def _describe(error: ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path) or "config"
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"{missing} is required"
    if error.absolute_path and str(error.absolute_path[0]) in SECRET_SETTINGS:
        return f"{path} must be a non-empty string"
    if error.validator == "type":
        return f"{path} must be of type {error.validator_value}, not {_short(error.instance)}"
    if error.validator in {"minimum", "maximum"}:
        word = "at least" if error.validator == "minimum" else "at most"
        return f"{path} must be {word} {error.validator_value}, not {_short(error.instance)}"
    if error.validator == "minLength":
        return f"{path} must not be empty"
    if error.validator == "minItems":
        return f"{path} must list at least {error.validator_value} item"
    return f"{path}: {error.message[:200]}"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_datetime(value: str) -> bool:
    try:
        normalize_timestamp(value)
    except ValueError:  # pendulum's ParserError included
        return False
    return True


def _semantic_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """What JSON Schema alone lets through: formats, and duplicates."""
    errors = []
    start_date = config.get("start_date")
    if isinstance(start_date, str) and not _is_datetime(start_date):
        errors.append(
            f"start_date must be an RFC 3339 date-time such as 2024-01-31T00:00:00Z, not {_short(start_date)}"
        )
    api_url = config.get("api_url")
    if isinstance(api_url, str) and api_url:
        parts = urllib.parse.urlsplit(api_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            errors.append(f"api_url must be an http(s) URL such as https://api.hotjar.io, not {_short(api_url)}")
        elif parts.query or parts.fragment:
            errors.append(f"api_url must not have a query or fragment, not {_short(api_url)}")
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
            if value is not None and not _is_datetime(str(value)):
                msg = f"state: bookmarks.{stream_name} has a bookmark that is not a timestamp: {_short(value)}"
                raise HotjarStateError(msg)


if __name__ == "__main__":
    TapHotjar.cli()
