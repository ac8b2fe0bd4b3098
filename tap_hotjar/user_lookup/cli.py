"""`hotjar-user-lookup`: data-subject requests through the Hotjar User Lookup API.

For each data subject (an email address and/or site id -> user id pairs) it sends
POST /v1/organizations/:organization_id/user-lookup. Without --delete, Hotjar emails
a report of what it holds; with --delete (confirmed), Hotjar silently deletes it.

Everything is checked before the first request: the config, every subject, the
result log, and the confirmation of a deletion. Exit status: 0 when every subject
was accepted (or skipped as already accepted), 1 when a subject was refused or the
run stopped on an error, 2 when nothing was sent (bad usage, config or input, or a
deletion that was not confirmed).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import json
import os
import sys
import typing as t
import urllib.parse

from tap_hotjar.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, MASK, redact, remember_secret
from tap_hotjar.settings import DEBUG_ENV, DEFAULT_API_URL, ENV_PREFIX, api_url_errors
from tap_hotjar.settings import ENV_CONFIG as CONFIG_FROM_ENV
from tap_hotjar.user_lookup.client import PROG
from tap_hotjar.user_lookup.subjects import (
    InvalidSubjectsError,
    Subject,
    SubjectError,
    read_subjects,
    short,
    subject_from_flags,
)
from tap_hotjar.user_lookup.warehouse import WarehouseHalf
from tap_hotjar.warehouse.connection import WarehouseError
from tap_hotjar.warehouse.data_subjects import IDENTITY_ATTRIBUTE
from tap_hotjar.warehouse.tables import add_layout_options, layout_from

if t.TYPE_CHECKING:
    from tap_hotjar.user_lookup.client import UserLookupClient

EXIT_NOT_SENT = 2  # nothing was sent: bad usage, config or input, or no confirmation
CONFIRM_WORD = "delete"
PREVIEW_SUBJECTS = 5


class NothingSentError(Exception):
    """The run stopped before sending anything: usage, config, input or confirmation."""


class RunFailedError(Exception):
    """The run stopped on an error from Hotjar or the network (e.g. wrong credentials)."""


class WarehouseHalfFailedError(Exception):
    """The warehouse half of an accepted subject failed (its transaction rolled back): the batch stops."""


# ---------------------------------------------------------------------- output


class Console:
    """stdout for results, stderr for errors; no secret ever reaches either."""

    @staticmethod
    def redact(text: str) -> str:
        return redact(text)

    def out(self, text: str = "") -> None:
        print(self.redact(text), flush=True)  # noqa: T201

    def err(self, text: str) -> None:
        sys.stdout.flush()
        print(self.redact(text), file=sys.stderr, flush=True)  # noqa: T201

    def error(self, text: str) -> None:
        self.err(f"{PROG}: error: {text}")


# ---------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class LookupConfig:
    client_id: str
    client_secret: str = dataclasses.field(repr=False)
    organization_id: int
    api_url: str


def _read_config(source: str) -> dict[str, t.Any]:
    if source == CONFIG_FROM_ENV:
        return {}
    try:
        with open(source, encoding="utf-8") as handle:
            raw = json.load(handle)
    except OSError as exc:
        raise NothingSentError(f"cannot read the config file {source}: {exc.strerror}") from None
    except ValueError as exc:
        raise NothingSentError(f"the config file {source} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise NothingSentError(f"the config file {source} must hold a JSON object")
    return raw


def _config_errors(raw: dict[str, t.Any]) -> list[str]:
    errors = []
    for key in ("client_id", "client_secret"):
        value = raw.get(key)
        if value in (None, ""):
            errors.append(f"{key} is required")
        elif not isinstance(value, str):
            errors.append(f"{key} must be a non-empty string")  # never echo a secret
    organization_id = raw.get("organization_id")
    if organization_id is None:
        errors.append(
            "organization_id is required for user lookups (the ID next to the "
            "organization on Hotjar's Sites & Organizations page)"
        )
    elif isinstance(organization_id, bool) or not isinstance(organization_id, int):
        errors.append(f"organization_id must be a positive integer, not {short(organization_id)}")
    elif organization_id < 1:
        errors.append(f"organization_id must be a positive integer, not {organization_id}")
    api_url = raw["api_url"]
    if not isinstance(api_url, str):
        errors.append(f"api_url must be a string, not {short(api_url)}")
    else:
        errors += api_url_errors(api_url)  # the tap's own check: both read api_url the same way
    return errors


def load_config(source: str, environ: t.Mapping[str, str]) -> LookupConfig:
    """The tap's config file (or ENV), with TAP_HOTJAR_* variables filling in gaps."""
    raw = _read_config(source)
    for key in ("client_id", "client_secret", "organization_id", "api_url"):
        if raw.get(key) in (None, ""):
            value = environ.get(ENV_PREFIX + key.upper(), "").strip()
            if value:
                raw[key] = value
    organization_id = raw.get("organization_id")
    if isinstance(organization_id, str) and organization_id.strip().isdigit():
        raw["organization_id"] = int(organization_id)
    raw["api_url"] = raw.get("api_url") or DEFAULT_API_URL
    errors = _config_errors(raw)
    if errors:
        where = "environment" if source == CONFIG_FROM_ENV else source
        raise NothingSentError(f"invalid config ({where}): " + "; ".join(errors))
    return LookupConfig(
        client_id=raw["client_id"],
        client_secret=raw["client_secret"],
        organization_id=raw["organization_id"],
        api_url=raw["api_url"].rstrip("/"),
    )


# ------------------------------------------------------------------ result log


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class ResultLog:
    """JSON Lines, one line per subject sent: pseudonymous key, status, reason, time.

    It holds no email address, user id or secret, so it can be kept as a record.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._handle: t.TextIO | None = None
        self.unreadable = 0

    def accepted(self, organization_id: int, *, delete: bool) -> set[str]:
        """Keys of subjects already accepted for this organization and delete flag."""
        keys: set[str] = set()
        try:
            with open(self.path, encoding="utf-8") as handle:
                lines = handle.readlines()
        except FileNotFoundError:
            return keys
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise NothingSentError(f"cannot read the result log {self.path}: {reason}") from None
        for line in lines:
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                if (
                    entry["status"] == "accepted"
                    and entry["organization_id"] == organization_id
                    and entry["delete"] is delete
                ):
                    keys.add(entry["key"])
            except (ValueError, KeyError, TypeError):
                self.unreadable += 1
        return keys

    def open(self) -> None:
        """Open for appending now, so that an unwritable log stops the run early."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._handle = os.fdopen(fd, "a", encoding="utf-8")
        except OSError as exc:
            raise NothingSentError(f"cannot write the result log {self.path}: {exc.strerror}") from None

    def write(self, entry: dict[str, t.Any]) -> None:
        if self._handle is None:
            return
        # ASCII only: a raw U+2028 in a reference would split the line for some readers.
        self._handle.write(json.dumps(entry) + "\n")
        # Flushed line by line: a crash loses at most the line being written.
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


# ------------------------------------------------------------------- arguments


class _VersionAction(argparse.Action):
    def __init__(self, option_strings: list[str], dest: str, **kwargs: t.Any) -> None:
        kwargs.update(nargs=0, default=argparse.SUPPRESS, help="print the version and exit")
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: t.Any, **kwargs: t.Any) -> None:
        from tap_hotjar.http import user_agent  # noqa: PLC0415

        parser.exit(0, user_agent(PROG) + "\n")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> t.NoReturn:
        # One line, not argparse's usage block.
        self.exit(EXIT_NOT_SENT, f"{PROG}: error: {message} (see {PROG} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description=(
            "Send Hotjar user-lookup requests for data subjects (access requests), or, "
            "with --delete, ask Hotjar to delete all data it holds about them (erasure "
            "requests). Without --delete Hotjar emails a report to the data subject's "
            "email address and to the default recipient of the User Lookup page. "
            "Deletion cannot be undone."
        ),
        epilog=(
            "Files: CSV with a header (columns email, site_users as 'SITE=USER;SITE=USER', "
            'site_id, user_id, reference) or JSON Lines ({"email": ..., "site_users": '
            '{"42": "u42"}, "reference": ...}). Exit status: 0 all accepted or '
            "skipped, 1 a subject was refused or the run stopped, 2 nothing was sent."
        ),
    )
    parser.add_argument(
        "--config",
        required=True,
        metavar="FILE",
        help=(
            "the tap's JSON config file (client_id, client_secret, organization_id, "
            "api_url), or ENV to read TAP_HOTJAR_* environment variables only; those "
            "variables also fill in keys missing from the file"
        ),
    )
    parser.add_argument("--email", metavar="ADDRESS", help="the data subject's email address")
    parser.add_argument(
        "--site-user",
        action="append",
        default=[],
        metavar="SITE_ID=USER_ID",
        help="the user id a site sent to Hotjar's User Attributes API (repeatable)",
    )
    parser.add_argument("--file", metavar="PATH", help="many subjects: a CSV or JSON Lines file")
    parser.add_argument(
        "--delete",
        action="store_true",
        help="ask Hotjar to delete all data about each subject (asks for confirmation)",
    )
    parser.add_argument("--yes", action="store_true", help="confirm --delete without a prompt")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the requests that would be sent (secrets masked) and send nothing",
    )
    parser.add_argument(
        "--log",
        metavar="PATH",
        help="JSON Lines result log; a rerun with the same log skips subjects already accepted",
    )
    warehouse = parser.add_argument_group(
        "the warehouse half (docs/data-subject-requests.md)",
        "With --warehouse, each subject Hotjar accepts is also erased from the warehouse (with --delete) "
        "or reported from it (without), in one transaction per subject.",
    )
    warehouse.add_argument(
        "--warehouse",
        metavar="URL",
        help=(
            "postgresql://user[:password]@host[:port]/dbname or duckdb:///absolute/path.duckdb "
            "(a password may also come from PGPASSWORD)"
        ),
    )
    add_layout_options(warehouse)
    warehouse.add_argument(
        "--identity-attribute",
        default=os.environ.get("HOTJAR_IDENTITY_ATTRIBUTE") or IDENTITY_ATTRIBUTE,
        metavar="NAME",
        help=(
            "the user attribute holding the user id a site sent (the dbt var hotjar_identity_attribute; "
            f"default $HOTJAR_IDENTITY_ATTRIBUTE, else {IDENTITY_ATTRIBUTE})"
        ),
    )
    warehouse.add_argument(
        "--report-dir",
        metavar="DIR",
        help="without --delete: write each subject's responses found in the warehouse to DIR, one JSON file each",
    )
    parser.add_argument("--version", action=_VersionAction)
    return parser


def _subjects(args: argparse.Namespace, console: Console) -> list[Subject]:
    if args.yes and not args.delete:
        # Likely a deletion meant as one; a lookup instead would email the subjects.
        raise NothingSentError("--yes confirms --delete and means nothing without it")
    if args.file and (args.email is not None or args.site_user):
        raise NothingSentError("give either --file or --email/--site-user, not both")
    if args.file:
        try:
            return read_subjects(args.file)
        except InvalidSubjectsError as exc:
            if len(exc.problems) == 1:
                raise NothingSentError(f"{exc.problems[0]}; nothing was sent") from None
            for problem in exc.problems:
                console.error(problem)
            msg = f"{len(exc.problems)} invalid rows in {args.file}; nothing was sent"
            raise NothingSentError(msg) from None
    if args.email is None and not args.site_user:
        raise NothingSentError("no data subject: give --email and/or --site-user, or --file")
    try:
        return [subject_from_flags(args.email, args.site_user)]
    except SubjectError as exc:
        raise NothingSentError(f"{exc}; nothing was sent") from None


# --------------------------------------------------------------------- the run


def _open_terminal() -> tuple[t.TextIO, t.TextIO, list[t.TextIO]] | None:
    """(reader, writer, handles to close) for a prompt, or None without a terminal.

    /dev/tty first: under `meltano invoke` stdout and stderr are pipes read line by
    line, where a prompt without a newline would stay invisible.
    """
    try:
        # Two handles: a terminal is not seekable, which a text-mode "r+" requires.
        reader = open("/dev/tty", encoding="utf-8")  # noqa: SIM115 - closed by the caller
    except OSError:
        pass
    else:
        try:
            writer = open("/dev/tty", "w", encoding="utf-8")  # noqa: SIM115
        except OSError:
            reader.close()
        else:
            return reader, writer, [reader, writer]
    if sys.stdin.isatty():
        return sys.stdin, sys.stderr, []
    return None


def _confirm_deletion(subjects: list[Subject], config: LookupConfig) -> None:
    """Ask on the terminal; without one, refuse (use --yes to confirm in scripts)."""
    opened = _open_terminal()
    if opened is None:
        msg = (
            "--delete must be confirmed, and there is no terminal to ask on: "
            "add --yes to confirm without a prompt; nothing was sent"
        )
        raise NothingSentError(msg)
    reader, writer, handles = opened
    count = len(subjects)
    try:
        writer.write(
            f"\nAbout to ask Hotjar to DELETE all data it holds about {count} data "
            f"subject{'s' if count != 1 else ''} in organization {config.organization_id}:\n"
        )
        for subject in subjects[:PREVIEW_SUBJECTS]:
            writer.write(f"  {subject.describe()}\n")
        if count > PREVIEW_SUBJECTS:
            writer.write(f"  ... and {count - PREVIEW_SUBJECTS} more\n")
        writer.write(
            "Hotjar deletes silently (no report, no email). Deletion cannot be undone.\n"
            f"Type '{CONFIRM_WORD}' or the number of subjects ({count}) to continue: "
        )
        writer.flush()
        answer = reader.readline().strip()
    finally:
        for handle in handles:
            handle.close()
    if answer.lower() not in {CONFIRM_WORD, str(count)}:
        raise NothingSentError("deletion not confirmed; nothing was sent")


def _print_dry_run(
    console: Console,
    client: UserLookupClient,
    subjects: list[Subject],
    *,
    delete: bool,
) -> None:
    console.out("DRY RUN: nothing is sent, not even the token request. These requests would be sent:")
    if delete:
        console.out("(delete_all_hits is true: Hotjar would delete all data silently; that cannot be undone)")
    console.out()
    console.out("# Access token, requested once and reused")
    console.out(f"POST {client.token_url}")
    console.out("Content-Type: application/x-www-form-urlencoded")
    console.out()
    client_id = urllib.parse.quote_plus(client.authenticator.client_id or "")
    console.out(f"grant_type=client_credentials&client_id={client_id}&client_secret={MASK}")
    for number, subject in enumerate(subjects, start=1):
        prepared = client.prepare(subject, delete=delete)
        console.out()
        console.out(f"# {number}/{len(subjects)}: {subject.source}")
        console.out(f"{prepared.method} {prepared.url}")
        for name, value in prepared.headers.items():
            console.out(f"{name}: {value}")
        console.out(f"Authorization: Bearer {MASK}")
        console.out()
        console.out(t.cast("bytes", prepared.body).decode("utf-8"))
    console.out()


def _announce(console: Console, count: int, config: LookupConfig, *, delete: bool) -> None:
    plural = "s" if count != 1 else ""
    if delete:
        console.out(
            f"Organization {config.organization_id}: asking Hotjar to delete all data about "
            f"{count} data subject{plural}. Hotjar deletes silently: no report, no email. "
            "This cannot be undone."
        )
    else:
        console.out(
            f"Organization {config.organization_id}: requesting a user lookup report for "
            f"{count} data subject{plural}. Hotjar emails each report to the data subject's "
            "email address (when one is given) and to the default recipient set on the "
            "User Lookup page in Hotjar."
        )


@dataclasses.dataclass
class Plan:
    pending: list[Subject]  # to send
    accepted_before: list[Subject]  # accepted in an earlier run (by the log), each once
    skipped: int  # logged as accepted, or repeated


def _pending(
    console: Console,
    subjects: list[Subject],
    done: set[str],
) -> Plan:
    """Subjects still to send; subjects Hotjar accepted before (by the log), each once; and
    how many were skipped (logged as accepted, or repeated)."""
    pending: list[Subject] = []
    accepted_before: list[Subject] = []
    seen: dict[str, Subject] = {}
    skipped = 0
    for subject in subjects:
        if subject.key in seen:
            skipped += 1
            console.out(f"skipped   {subject.source}: same subject as {seen[subject.key].source}")
            continue
        seen[subject.key] = subject
        if subject.key in done:
            skipped += 1
            accepted_before.append(subject)
        else:
            pending.append(subject)
    return Plan(pending, accepted_before, skipped)


def _open_warehouse(args: argparse.Namespace) -> WarehouseHalf | None:
    """The warehouse half, checked before anything is sent (or None without --warehouse)."""
    if args.report_dir and not args.warehouse:
        raise NothingSentError("--report-dir writes what --warehouse holds about each subject: give --warehouse")
    if not args.warehouse:
        return None
    if args.delete and args.report_dir:
        raise NothingSentError("--report-dir is for access requests: with --delete the subjects' rows are erased")
    if not args.delete and not args.report_dir and not args.dry_run:
        raise NothingSentError(
            "--warehouse without --delete reports each subject's rows from the warehouse: give --report-dir DIR"
        )
    layout = layout_from(args)
    try:
        return WarehouseHalf(
            args.warehouse,
            layout,
            identity_attribute=args.identity_attribute,
            erase=args.delete,
            report_dir=args.report_dir,
        )
    except WarehouseError as exc:
        raise NothingSentError(f"{exc}; nothing was sent") from None


def run(argv: list[str] | None, console: Console) -> int:
    args = build_parser().parse_args(argv)
    subjects = _subjects(args, console)
    config = load_config(args.config, os.environ)
    remember_secret(config.client_secret)
    log = ResultLog(args.log) if args.log else None

    done = log.accepted(config.organization_id, delete=args.delete) if log else set()
    if log and log.unreadable:
        console.err(f"{PROG}: warning: ignored {log.unreadable} unreadable line(s) in {log.path}")
    if log and done:
        already = sum(subject.key in done for subject in subjects)
        if already:
            plural = "s" if already != 1 else ""
            console.out(f"Skipping {already} subject{plural} already accepted (result log {log.path}).")
    plan = _pending(console, subjects, done)
    # The warehouse is opened and its tables checked before anything is sent.
    warehouse = _open_warehouse(args)
    try:
        return Batch(args, console, config, log, warehouse).run(plan)
    finally:
        if warehouse is not None:
            warehouse.close()


class Batch:
    """One run's requests to Hotjar and, for each subject Hotjar accepts, the warehouse half."""

    def __init__(
        self,
        args: argparse.Namespace,
        console: Console,
        config: LookupConfig,
        log: ResultLog | None,
        warehouse: WarehouseHalf | None,
    ) -> None:
        # singer-sdk (through the tap's authenticator) loads only for a valid run.
        from tap_hotjar.user_lookup.client import UserLookupClient  # noqa: PLC0415

        self.args, self.console, self.config, self.log, self.warehouse = args, console, config, log, warehouse
        self.delete: bool = args.delete
        self.client = UserLookupClient(
            api_url=config.api_url,
            organization_id=config.organization_id,
            client_id=config.client_id,
            client_secret=config.client_secret,
            notify=lambda text: console.err(f"{PROG}: warning: {text}"),
        )
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.totals: collections.Counter[str] = collections.Counter()

    def run(self, plan: Plan) -> int:
        from tap_hotjar.user_lookup.client import HotjarError  # noqa: PLC0415 - loaded by now

        pending, skipped = plan.pending, plan.skipped
        # With a warehouse, subjects Hotjar accepted in an earlier run get their warehouse
        # half again (it finds nothing the second time, or what was loaded since).
        again = plan.accepted_before if self.warehouse is not None else []
        if not pending and not again:
            self.console.out(f"Summary: 0 accepted, 0 refused, {skipped} skipped. Nothing to send.")
            return EXIT_OK
        if self.args.dry_run:
            self._dry_run(pending, again, skipped)
            return EXIT_OK
        if self.delete and not self.args.yes and pending:
            _confirm_deletion(pending, self.config)
        if self.log:
            self.log.open()
        try:
            if pending:
                try:
                    self.client.ensure_token()
                except HotjarError as exc:
                    raise RunFailedError(str(exc)) from None
            stopped = self._send_all(pending, again)
        finally:
            if self.log:
                self.log.close()
        return self._summary(len(pending), skipped, stopped)

    def _dry_run(self, pending: list[Subject], again: list[Subject], skipped: int) -> None:
        if pending:
            _print_dry_run(self.console, self.client, pending, delete=self.delete)
        self.console.out(f"Dry run: {len(pending)} would be sent, {skipped} skipped; nothing was sent.")
        if self.warehouse is not None:
            for subject in [*pending, *again]:
                handled = self.warehouse.preview(subject)
                self.console.out(f"warehouse {subject.source}: {handled.describe()} ({self.warehouse.display})")
            self.console.out("Dry run: nothing in the warehouse was changed.")

    def _entry(self, subject: Subject, status: str, http_status: int | None, reason: str) -> dict[str, t.Any]:
        return {
            "time": _now(),
            "key": subject.key,
            "reference": subject.reference,
            "source": subject.source,
            "organization_id": self.config.organization_id,
            "delete": self.delete,
            "status": status,
            "http_status": http_status,
            "reason": self.console.redact(reason),
        }

    def _send_all(self, subjects: list[Subject], again: list[Subject]) -> str | None:
        """Send each subject; return why the batch stopped early, or None."""
        from tap_hotjar.user_lookup.client import HotjarError  # noqa: PLC0415 - loaded by now

        if subjects:
            _announce(self.console, len(subjects), self.config, delete=self.delete)
        try:
            for subject in subjects:
                try:
                    outcome = self.client.send(subject, delete=self.delete)
                except HotjarError as exc:
                    return str(exc)
                self.outcomes[outcome.status] += 1
                what = "deletion" if self.delete else "lookup"
                self.console.out(
                    f"{outcome.status:<8}  {what}  {subject.source}: {subject.describe()}  ({outcome.reason})"
                )
                logged = self._entry(subject, outcome.status, outcome.http_status, outcome.reason)
                if outcome.status == "accepted":
                    self._warehouse_half(subject, logged)  # refused or failed: the warehouse is not touched
                self._write(logged)
                if outcome.stop:
                    return f"stopped after {subject.source}: {outcome.reason}"
            for subject in again:
                self.console.out(f"skipped   {subject.source}: accepted by Hotjar earlier (result log); not sent again")
                logged = self._entry(subject, "skipped", None, "accepted earlier (result log); not sent again")
                self._warehouse_half(subject, logged)
                self._write(logged)
        except WarehouseHalfFailedError as exc:
            return str(exc)
        except KeyboardInterrupt:
            return "interrupted"
        return None

    def _write(self, logged: dict[str, t.Any]) -> None:
        if self.log:
            self.log.write(logged)

    def _warehouse_half(self, subject: Subject, logged: dict[str, t.Any]) -> None:
        """Erase or report a subject Hotjar accepted, in one transaction; its numbers go into the log line."""
        if self.warehouse is None:
            return
        try:
            handled = self.warehouse.handle(subject)
        except Exception as exc:  # noqa: BLE001 - a driver's own error too: one line, the log kept whole
            self._failed(subject, logged, exc)
        logged["warehouse"] = handled.log_entry()
        for name in ("responses", "answers", "model_rows"):
            self.totals[name] += getattr(handled, name)
        self.totals["subjects"] += 1
        self.console.out(f"          warehouse  {subject.source}: {handled.describe()}")

    def _failed(self, subject: Subject, logged: dict[str, t.Any], exc: BaseException) -> t.NoReturn:
        logged["warehouse"] = {"action": "failed"}
        self._write(logged)
        msg = (
            f"the warehouse half failed for {subject.source} ({type(exc).__name__}: {exc}); nothing of it "
            "changed there. Hotjar accepted it: rerun with the same --log to finish it (Hotjar is not asked again)"
        )
        raise WarehouseHalfFailedError(msg) from None

    def _summary(self, sent: int, skipped: int, stopped: str | None) -> int:
        accepted, refused, failed = self.outcomes["accepted"], self.outcomes["refused"], self.outcomes["failed"]
        not_sent = sent - accepted - refused - failed
        # "failed": Hotjar never answered usably (it may even have processed the request).
        summary = f"Summary: {accepted} accepted, {refused} refused" + (f", {failed} failed" if failed else "")
        self.console.out(summary + f", {skipped} skipped" + (f", {not_sent} not sent." if not_sent else "."))
        if self.warehouse is not None:
            totals = self.totals
            verb = "erased" if self.delete else "reported"
            extra = f" (and {totals['model_rows']} model row(s))" if self.delete else ""
            self.console.out(
                f"Warehouse {self.warehouse.display}: {verb} {totals['responses']} response(s) and "
                f"{totals['answers']} answer(s){extra} of {totals['subjects']} subject(s)."
            )
        if stopped:
            self.console.error(f"{stopped}; {not_sent} subject(s) not sent (rerun with the same --log to resume)")
            return EXIT_INTERRUPTED if stopped == "interrupted" else EXIT_FAILED
        if refused:
            self.console.error(
                f"Hotjar refused {refused} of {accepted + refused} request(s); see the lines marked 'refused'"
            )
            return EXIT_FAILED
        return EXIT_OK


def main(argv: list[str] | None = None) -> None:
    console = Console()
    try:
        code = run(argv, console)
    except NothingSentError as exc:
        console.error(str(exc))
        code = EXIT_NOT_SENT
    except RunFailedError as exc:
        console.error(str(exc))
        code = EXIT_FAILED
    except KeyboardInterrupt:
        console.error("interrupted")
        code = EXIT_INTERRUPTED
    except Exception as exc:  # every failure ends as one line
        if os.environ.get(DEBUG_ENV):
            raise
        text = console.redact(str(exc))
        text = text if len(text) <= 300 else text[:297] + "..."
        console.error(f"{type(exc).__name__}: {text} (set {DEBUG_ENV}=1 for a traceback)")
        code = EXIT_FAILED
    sys.exit(code)


if __name__ == "__main__":
    main()
