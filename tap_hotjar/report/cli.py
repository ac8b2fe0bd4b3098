"""`hotjar-report`: the analytics models as one HTML page of charts and tables.

    hotjar-report --warehouse duckdb:///abs/path/warehouse.duckdb --out output/report.html
    hotjar-report --warehouse postgresql://user@host:5432/dbname --schema hotjar_analytics

Each option can come from the environment instead: HOTJAR_REPORT_WAREHOUSE,
HOTJAR_REPORT_SCHEMA, HOTJAR_REPORT_OUT, HOTJAR_REPORT_TITLE (Meltano's `hotjar-report`
utility sets the last three from its settings and passes --warehouse per command).
A PostgreSQL password can stay out of the URL: libpq's PGPASSWORD or ~/.pgpass. The
warehouse is opened read-only. Exit status 0 when the page was written, 1 with one line
on stderr when not.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import typing as t
from pathlib import Path

from tap_hotjar.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, HotjarError, redact

PROG = "hotjar-report"
ENV_PREFIX = "HOTJAR_REPORT_"
DEFAULT_SCHEMA = "hotjar_analytics"
DEFAULT_OUT = "output/report.html"
DEBUG_ENV = "HOTJAR_REPORT_TRACEBACK"


class ReportError(HotjarError):
    """The report cannot be made: printed as one line."""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(ENV_PREFIX + name) or default


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write the NPS, CSAT and responses report of the analytics models as one HTML file "
        "(self-contained: it opens offline).",
    )
    parser.add_argument(
        "--warehouse",
        default=_env("WAREHOUSE"),
        help="postgresql://user[:password]@host[:port]/dbname or duckdb:///absolute/path.duckdb "
        f"(env {ENV_PREFIX}WAREHOUSE)",
    )
    parser.add_argument(
        "--schema",
        default=_env("SCHEMA", DEFAULT_SCHEMA),
        help=f"schema of the dbt models (env {ENV_PREFIX}SCHEMA; default {DEFAULT_SCHEMA})",
    )
    parser.add_argument(
        "--out",
        default=_env("OUT", DEFAULT_OUT),
        help=f"the HTML file to write (env {ENV_PREFIX}OUT; default {DEFAULT_OUT})",
    )
    parser.add_argument("--title", default=_env("TITLE"), help=f"the page's title (env {ENV_PREFIX}TITLE)")
    return parser.parse_args(argv)


def build(warehouse: str, schema: str, out: Path, title: str | None = None) -> tuple[int, int]:
    """Write the report; returns (surveys, charts)."""
    # Written whole, then renamed: a browser never opens half a report. Tried first,
    # so that an unwritable output fails before the warehouse is read.
    partial = out.with_name(out.name + ".partial")
    _write(partial, "", out)
    try:
        from tap_hotjar.report.data import read_report_data  # noqa: PLC0415
        from tap_hotjar.warehouse.connection import connect  # noqa: PLC0415

        with connect(warehouse, read_only=True) as connection:
            data = read_report_data(connection, schema)
        try:
            # Imported here: without the report extra, the error is one line, not a
            # traceback (and a wrong URL is reported before the plotting libraries load).
            from tap_hotjar.report import page  # noqa: PLC0415
        except ImportError as exc:
            raise ReportError(
                f"the report's plotting libraries are not installed ({exc.name}); "
                "install the report extra: pip install 'tap-hotjar[report]'"
            ) from None
        try:
            html = page.render(data, title=title or page.TITLE)
        except page.ReportBuildError as exc:
            raise ReportError(str(exc)) from None
        _write(partial, html, out)
        try:
            partial.replace(out)
        except OSError as exc:
            raise ReportError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    charts = sum(1 + len(survey.questions) for survey in data.surveys)
    return len(data.surveys), charts


def _write(path: Path, text: str, out: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write {out}: {exc.strerror or exc}") from None


def main(argv: list[str] | None = None) -> t.NoReturn:
    args = parse_args(argv)
    out = Path(args.out).expanduser().resolve()
    if not args.warehouse:
        _error(f"--warehouse (or {ENV_PREFIX}WAREHOUSE) is required: postgresql://... or duckdb:///...")
        sys.exit(EXIT_FAILED)
    try:
        surveys, charts = build(args.warehouse, args.schema, out, args.title)
    except HotjarError as exc:
        _error(str(exc))
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        _error("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # every failure ends as one line
        if os.environ.get(DEBUG_ENV):
            raise
        text = redact(" ".join(str(exc).split()))
        text = text if len(text) <= 300 else text[:297] + "..."
        _error(f"{type(exc).__name__}: {text} (set {DEBUG_ENV}=1 for a traceback)")
        sys.exit(EXIT_FAILED)
    print(f"{PROG}: wrote {out} ({surveys} surveys, {charts} charts)")  # noqa: T201
    sys.exit(EXIT_OK)


def _error(text: str) -> None:
    print(f"{PROG}: error: {redact(text)}", file=sys.stderr)  # noqa: T201


if __name__ == "__main__":
    main()
