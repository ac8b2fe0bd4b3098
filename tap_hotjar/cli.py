"""The `tap-hotjar` executable: the SDK's CLI, with errors as one line each.

A plain SDK tap answers bad config or credentials with a traceback; our users get
one line on stderr naming the problem and a non-zero exit instead.
"""

from __future__ import annotations

import json
import os
import sys
import typing as t

import click
import requests
from singer_sdk.exceptions import ConfigValidationError, RetriableAPIError

from tap_hotjar.errors import HotjarError
from tap_hotjar.tap import TapHotjar, check_state

EXIT_FAILURE = 1
DEBUG_ENV = "TAP_HOTJAR_TRACEBACK"


def _fail(message: str) -> t.NoReturn:
    sys.stdout.flush()
    print(f"tap-hotjar: error: {message}", file=sys.stderr, flush=True)  # noqa: T201
    sys.exit(EXIT_FAILURE)


def _check_json_file(args: list[str], option: str, what: str) -> object:
    """Read --state / --catalog before the SDK does, to name the file in errors."""
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            path = args[i + 1]
        elif arg.startswith(option + "="):
            path = arg.split("=", 1)[1]
        else:
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
        except OSError as exc:
            _fail(f"cannot read the {what} file {path}: {exc.strerror}")
        except ValueError as exc:
            _fail(f"the {what} file {path} is not valid JSON: {exc}")
    return None


def main(args: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if args is None else args)
    state = _check_json_file(argv, "--state", "state")
    if state is not None:
        try:
            check_state(state)
        except HotjarError as exc:
            _fail(str(exc))
    _check_json_file(argv, "--catalog", "catalog")
    _check_json_file(argv, "--config", "config")
    try:
        TapHotjar.cli.main(args=argv, prog_name="tap-hotjar", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message())
    except click.exceptions.Abort:
        _fail("aborted")
    except Exception as exc:  # noqa: BLE001 - every failure ends as one line
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
        return f"gave up after repeated network failures: {type(exc).__name__}: {_scrub(exc)}"
    return f"{type(exc).__name__}: {_scrub(exc)} (set {DEBUG_ENV}=1 for a traceback)"


def _scrub(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:297] + "..."


if __name__ == "__main__":
    main()
