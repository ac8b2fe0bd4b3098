"""Data subjects for `hotjar-user-lookup`, validated before anything is sent.

A subject is what one user-lookup request is about: an email address, a map of
site id to the user id the site sent with Hotjar's User Attributes API, or both.
Subjects come from the command line or from a file (CSV or JSON Lines); a file is
read whole and every invalid row is reported, so that nothing is sent from a file
that is partly wrong.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import re
import typing as t

MAX_EMAIL_LENGTH = 254
MAX_REFERENCE_LENGTH = 200
# Deliberately simpler than RFC 5322: one @, no spaces or characters that only
# appear in quoted or display-name forms, a dot in the domain, a TLD of 2+ characters.
_ATOM = r"[^\s@\"(),:;<>\[\]\\]"
_EMAIL = re.compile(rf"{_ATOM}+@(?:[^\s@\"(),:;<>\[\]\\.]+\.)+[^\s@\"(),:;<>\[\]\\.]{{2,}}")
_DIGITS = re.compile(r"[0-9]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_SITE_ID = 2**63 - 1

CSV_COLUMNS = ("email", "site_users", "site_id", "user_id", "reference")
JSONL_KEYS = ("email", "site_users", "reference")
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")


class SubjectError(ValueError):
    """One subject (the command line, or one row of a file) is not valid."""


class InvalidSubjectsError(ValueError):
    """A file holds invalid rows; `problems` has one message per row."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems[-1] if problems else "invalid subjects")
        self.problems = problems


@dataclasses.dataclass(frozen=True)
class Subject:
    """One data subject, as it will be sent."""

    email: str | None
    site_users: tuple[tuple[str, str], ...]
    source: str
    reference: str | None = None

    def body(self, *, delete: bool) -> dict[str, t.Any]:
        """The JSON body of the user-lookup request: only the keys present."""
        body: dict[str, t.Any] = {}
        if self.email is not None:
            body["data_subject_email"] = self.email
        if self.site_users:
            body["data_subject_site_id_to_user_id_map"] = dict(self.site_users)
        body["delete_all_hits"] = delete
        return body

    @property
    def key(self) -> str:
        """A stable pseudonymous key: the same subject always gives the same key.

        The result log stores this key, not the email address or user ids.
        """
        canonical = json.dumps(
            {
                "email": self.email.lower() if self.email else None,
                "site_users": sorted(self.site_users, key=lambda pair: int(pair[0])),
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]

    def describe(self) -> str:
        """The subject for a person reading the terminal (it holds personal data)."""
        parts = []
        if self.email:
            parts.append(self.email)
        if self.site_users:
            pairs = ", ".join(f"{site}={user}" for site, user in self.site_users)
            parts.append(f"site users {pairs}")
        return " + ".join(parts)


def short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_email(value: object) -> str:
    if not isinstance(value, str):
        raise SubjectError(f"email must be a string, not {short(value)}")
    email = value.strip()
    if not email:
        raise SubjectError("email is empty")
    local = email.split("@", 1)[0]
    if (
        len(email) > MAX_EMAIL_LENGTH
        or not _EMAIL.fullmatch(email)
        or ".." in email
        or local.startswith(".")
        or local.endswith(".")
    ):
        raise SubjectError(f"{short(email)} is not a valid email address")
    return email


def check_site_id(value: object) -> str:
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str) or not _DIGITS.fullmatch(text) or not 0 < int(text) <= MAX_SITE_ID:
        raise SubjectError(f"site id {short(value)} is not a positive integer")
    return str(int(text))


def check_user_id(value: object, site_id: str) -> str:
    # JSON exports often hold numeric ids; the API wants strings.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise SubjectError(f"user id for site {site_id} must be a string, not {short(value)}")
    user_id = value.strip()
    if not user_id:
        raise SubjectError(f"user id for site {site_id} is empty")
    if _CONTROL.search(user_id):
        raise SubjectError(f"user id for site {site_id} contains control characters")
    return user_id


def check_reference(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise SubjectError(f"reference must be a string, not {short(value)}")
    reference = value.strip()
    if len(reference) > MAX_REFERENCE_LENGTH or _CONTROL.search(reference):
        msg = f"reference must be at most {MAX_REFERENCE_LENGTH} characters, on one line"
        raise SubjectError(msg)
    return reference or None


def parse_pair(text: str) -> tuple[str, str]:
    """`SITE_ID=USER_ID` -> (site id, user id), both checked."""
    site, sep, user = text.partition("=")
    if not sep:
        raise SubjectError(f"site user {short(text)} must be SITE_ID=USER_ID")
    site_id = check_site_id(site)
    return site_id, check_user_id(user, site_id)


def make_subject(
    email: object,
    pairs: list[tuple[str, str]],
    source: str,
    reference: str | None = None,
) -> Subject:
    """A subject from already-checked pairs and a raw email (None or '' for none)."""
    checked_email = None if email is None or email == "" else check_email(email)
    seen: set[str] = set()
    for site_id, _ in pairs:
        if site_id in seen:
            raise SubjectError(f"site {site_id} is given more than once")
        seen.add(site_id)
    if checked_email is None and not pairs:
        msg = "neither an email nor a site user is given (at least one is required)"
        raise SubjectError(msg)
    return Subject(checked_email, tuple(pairs), source, reference)


def subject_from_flags(email: str | None, site_users: list[str]) -> Subject:
    """The one subject given by --email and --site-user."""
    pairs = [parse_pair(text) for text in site_users]
    if email is not None and not email.strip():
        raise SubjectError("--email is empty")
    return make_subject(email, pairs, "command line")


def read_subjects(path: str) -> list[Subject]:
    """Every subject of a CSV or JSON Lines file; InvalidSubjectsError lists bad rows."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except OSError as exc:
        raise InvalidSubjectsError([f"cannot read the file {path}: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise InvalidSubjectsError([f"{path} is not UTF-8 text"]) from None
    lowered = path.lower()
    if lowered.endswith(JSONL_SUFFIXES):
        subjects, problems = _read_jsonl(path, text)
    elif lowered.endswith(CSV_SUFFIXES):
        subjects, problems = _read_csv(path, text)
    elif text.lstrip().startswith(("{", "[")):
        subjects, problems = _read_jsonl(path, text)
    else:
        subjects, problems = _read_csv(path, text)
    if not problems and not subjects:
        problems.append(f"{path} holds no subjects")
    if problems:
        raise InvalidSubjectsError(problems)
    return subjects


def _read_csv(path: str, text: str) -> tuple[list[Subject], list[str]]:
    subjects: list[Subject] = []
    problems: list[str] = []
    # Not str.splitlines(): it also splits at characters a quoted cell may hold.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    header_line = 0
    last_line = 0
    try:
        for row in reader:
            line, last_line = last_line + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header, header_line = [cell.strip().lower() for cell in row], line
                problem = _check_header(header)
                if problem:
                    return [], [f"{path} line {line}: {problem}"]
                continue
            if len(row) > len(header):
                problems.append(
                    f"{path} line {line}: {len(row)} fields, but the header (line "
                    f"{header_line}) has {len(header)}; quote values that hold commas"
                )
                continue
            padded = [cell.strip() for cell in row] + [""] * (len(header) - len(row))
            cells = dict(zip(header, padded, strict=True))
            try:
                subjects.append(_csv_subject(cells, f"{path} line {line}"))
            except SubjectError as exc:
                problems.append(f"{path} line {line}: {exc}")
    except csv.Error as exc:
        problems.append(f"{path} line {reader.line_num}: not valid CSV ({exc})")
    return subjects, problems


def _check_header(header: list[str]) -> str | None:
    unknown = [name for name in header if name not in CSV_COLUMNS]
    if unknown:
        return (
            f"unknown column(s) {', '.join(map(repr, unknown))} in the header; the columns are {', '.join(CSV_COLUMNS)}"
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        return f"column(s) {', '.join(repeated)} appear more than once in the header"
    if ("site_id" in header) != ("user_id" in header):
        return "the columns site_id and user_id go together"
    if not {"email", "site_users", "site_id"} & set(header):
        return "the header needs an email, site_users or site_id and user_id column"
    return None


def _csv_subject(cells: dict[str, str], source: str) -> Subject:
    pairs = [parse_pair(item.strip()) for item in cells.get("site_users", "").split(";") if item.strip()]
    site, user = cells.get("site_id", ""), cells.get("user_id", "")
    if site or user:
        site_id = check_site_id(site)
        pairs.append((site_id, check_user_id(user, site_id)))
    reference = check_reference(cells.get("reference"))
    return make_subject(cells.get("email") or None, pairs, source, reference)


def _read_jsonl(path: str, text: str) -> tuple[list[Subject], list[str]]:
    subjects: list[Subject] = []
    problems: list[str] = []
    # Lines end at \n only: JSON strings may hold other line separators (U+2028).
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        where = f"{path} line {number}"
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            problems.append(f"{where}: not valid JSON ({exc.args[0] if exc.args else exc})")
            continue
        try:
            subjects.append(_jsonl_subject(doc, where))
        except SubjectError as exc:
            problems.append(f"{where}: {exc}")
    return subjects, problems


def _jsonl_subject(doc: object, source: str) -> Subject:
    if not isinstance(doc, dict):
        msg = f'each line must be a JSON object such as {{"email": ...}}, not {type(doc).__name__}'
        raise SubjectError(msg)
    unknown = [key for key in doc if key not in JSONL_KEYS]
    if unknown:
        msg = f"unknown key(s) {', '.join(map(repr, unknown))}; the keys are {', '.join(JSONL_KEYS)}"
        raise SubjectError(msg)
    site_users = doc.get("site_users")
    pairs: list[tuple[str, str]] = []
    if site_users is not None:
        if not isinstance(site_users, dict):
            msg = 'site_users must be an object such as {"42": "user-42"}'
            raise SubjectError(msg)
        for site, user in site_users.items():
            site_id = check_site_id(site)
            pairs.append((site_id, check_user_id(user, site_id)))
    return make_subject(doc.get("email"), pairs, source, check_reference(doc.get("reference")))
