"""The `tap-hotjar` executable: the SDK's CLI, with errors as one line each.

A plain SDK tap answers bad config or credentials with a traceback; our users get
one line on stderr naming the problem and a non-zero exit instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import typing as t
import urllib.parse

import click
import requests
from singer_sdk.exceptions import ConfigValidationError, RetriableAPIError

from tap_hotjar.checkpoints import flush_output
from tap_hotjar.errors import EXIT_FAILED, EXIT_INTERRUPTED, HotjarError, HotjarInterrupted, redact, remember_secret
from tap_hotjar.http import policy
from tap_hotjar.settings import DEBUG_ENV, ENV_CONFIG, ENV_PREFIX, TAP_NAME, check_state
from tap_hotjar.streams import STREAM_NAMES
from tap_hotjar.tap import CONFIG_CHECK, TapHotjar

CLOSED_OUTPUT = "the output was closed before the sync finished (the target stopped reading)"


def _fail(message: str, code: int = EXIT_FAILED) -> t.NoReturn:
    _silence_logging()
    try:
        flush_output()  # records written before the failure, as far as the output takes them
        sys.stdout.flush()
    except (OSError, ValueError):  # the reader is gone: what is buffered has nowhere to go
        _discard_stdout()
    # No secret in an error line, whatever an exception's text holds.
    line = " ".join(redact(message, [os.environ.get(f"{ENV_PREFIX}CLIENT_SECRET")]).split())
    print(f"{TAP_NAME}: error: {line}", file=sys.stderr, flush=True)  # noqa: T201
    sys.exit(code)


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that exiting does not fail on a closed pipe again."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _silence_logging() -> None:
    """Nothing may follow the error line: threads still reading pages would log on.

    Holding every handler's lock waits for a record being written and blocks the
    rest until the process exits (the locks are re-entrant, so logging's own
    shutdown in this thread still gets them).
    """
    logging.disable(logging.CRITICAL)
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            handler.acquire()


def _option_values(args: list[str], option: str) -> list[str]:
    values = []
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            values.append(args[i + 1])
        elif arg.startswith(option + "="):
            values.append(arg.split("=", 1)[1])
    return values


def _read_json_file(path: str, what: str) -> object:
    """Read a --config / --state / --catalog file before the SDK does, to name it in errors."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        _fail(f"cannot read the {what} file {path}: {exc.strerror or type(exc).__name__}")
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        _fail(f"the {what} file {path} is not valid JSON: {exc}")


def _check_inputs(argv: list[str]) -> None:
    for path in _option_values(argv, "--state")[:1]:
        try:
            check_state(_read_json_file(path, "state"))
        except HotjarError as exc:
            _fail(f"{exc} (in the state file {path})")
    for path in _option_values(argv, "--catalog")[:1]:
        problem = catalog_problem(_read_json_file(path, "catalog"))
        if problem:
            _fail(f"the catalog file {path} is not a valid catalog: {problem}")
    merged: dict[str, t.Any] = {}
    paths = _option_values(argv, "--config")
    for path in paths:
        if path == ENV_CONFIG:
            _check_env_config()
            continue
        config = _read_json_file(path, "config")
        if not isinstance(config, dict):
            _fail(f"the config file {path} must hold a JSON object, not {type(config).__name__}")
        remember_secret(config.get("client_secret"))
        merged.update(config)
    # Refuse a bad config before the SDK starts logging, so that the error is the
    # only line. Discovery and --about need no valid config (Meltano discovers
    # before credentials are set); with `--config ENV` the SDK merges the
    # environment first and validates then.
    if paths and ENV_CONFIG not in paths and not {"--discover", "--about"} & set(argv):
        _, errors = CONFIG_CHECK.normalized(merged)
        if errors:
            _fail("invalid config: " + "; ".join(errors))


def _check_env_config() -> None:
    """The SDK parses TAP_HOTJAR_* integers and arrays with bare int() / json.loads."""
    for key, schema in TapHotjar.config_jsonschema["properties"].items():
        name = ENV_PREFIX + key.upper()
        value = os.environ.get(name)
        types = schema.get("type", [])
        types = [types] if isinstance(types, str) else types
        if value is None or schema.get("secret"):
            continue
        if "integer" in types:
            try:
                int(value)
            except ValueError:
                _fail(f"invalid config: {key} (from ${name}) must be an integer, not {value[:60]!r}")
        elif "array" in types or "object" in types:
            kind = "a JSON array such as [123, 456]" if "array" in types else "a JSON object"
            try:
                json.loads(value)
            except ValueError:
                _fail(f"invalid config: {key} (from ${name}) must be {kind}, not {value[:60]!r}")


def catalog_problem(catalog: object) -> str | None:
    """What makes a catalog unusable (the SDK would crash on it or skip it silently)."""
    if not isinstance(catalog, dict):
        return f"it must be a JSON object with a 'streams' list, not {type(catalog).__name__}"
    entries = catalog.get("streams")
    if not isinstance(entries, list) or not entries:
        return "it must have a non-empty 'streams' list"
    known = STREAM_NAMES
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"streams[{index}]"
        if not isinstance(entry, dict):
            return f"{where} must be an object"
        name = entry.get("tap_stream_id")
        if not isinstance(name, str) or not name:
            return f"{where} has no tap_stream_id"
        if name not in known:
            return f"{where} names an unknown stream {name[:60]!r} (known: {', '.join(sorted(known))})"
        if name in seen:
            return f"stream {name!r} is listed twice"
        seen.add(name)
        schema = entry.get("schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
            return f"stream {name!r} has no schema with 'properties'"
        metadata = entry.get("metadata", [])
        if not isinstance(metadata, list) or not all(
            isinstance(m, dict) and isinstance(m.get("breadcrumb"), list) and isinstance(m.get("metadata"), dict)
            for m in metadata
        ):
            return f"stream {name!r}: 'metadata' must be a list of {{breadcrumb, metadata}} objects"
    return None


def main(args: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if args is None else args)
    _check_inputs(argv)
    try:
        TapHotjar.cli.main(args=argv, prog_name=TAP_NAME, standalone_mode=False)
        flush_output(quiet=False)  # the tap buffers its output (checkpoints.py)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except SystemExit:
        # click answers a closed stdout (EPIPE) with a silent exit 1, after wrapping
        # stdout so that flushing it no longer fails.
        if "PacifyFlushWrapper" in type(sys.stdout).__name__:
            _fail(CLOSED_OUTPUT)
        raise
    except click.ClickException as exc:
        _fail(exc.format_message())
    except HotjarInterrupted as exc:
        name = signal.Signals(exc.signum).name
        _fail(
            f"interrupted by {name} before the sync finished; the last STATE written is safe to resume from",
            128 + exc.signum,
        )
    except BrokenPipeError:
        _fail(CLOSED_OUTPUT)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _fail(
            "interrupted before the sync finished; the last STATE written is safe to resume from",
            EXIT_INTERRUPTED,
        )
    except Exception as exc:  # every failure ends as one line
        if os.environ.get(DEBUG_ENV):
            raise
        _fail(_message(exc))


def _message(exc: Exception) -> str:
    if isinstance(exc, HotjarError):
        return str(exc)
    if isinstance(exc, ConfigValidationError):
        return "invalid config: " + "; ".join(exc.errors or [str(exc)])
    if isinstance(exc, RetriableAPIError):
        return f"gave up after repeated failures: {exc}"
    if isinstance(exc, requests.exceptions.RequestException):
        request = getattr(exc, "request", None)
        url = getattr(request, "url", None)
        if not isinstance(url, str):
            return f"gave up after repeated network failures: {policy.network_failure(exc, '?')}"
        path = urllib.parse.urlsplit(url).path
        return f"gave up after repeated network failures for {path}: {policy.network_failure(exc, url)}"
    return f"{type(exc).__name__}: {_scrub(exc)} (set {DEBUG_ENV}=1 for a traceback)"


def _scrub(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:297] + "..."


if __name__ == "__main__":
    main()
