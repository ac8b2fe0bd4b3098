"""The warehouse half of a data-subject request: what the pipeline copied, erased or reported.

Hotjar's answer (202, no body) says nothing about what it found, so the subject's rows
are found in the warehouse by the same identifiers (tap_hotjar/warehouse/data_subjects.py).
Opened, and its tables checked, before anything is sent to Hotjar; each subject is then
handled in one transaction of its own, after Hotjar accepted it.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
import typing as t
from pathlib import Path

from tap_hotjar.warehouse.connection import connect, parse_url
from tap_hotjar.warehouse.data_subjects import SubjectFinder, salt_from_environment
from tap_hotjar.warehouse.tables import Catalog, Layout

if t.TYPE_CHECKING:
    from tap_hotjar.user_lookup.subjects import Subject
    from tap_hotjar.warehouse.connection import Connection


@dataclasses.dataclass
class Handled:
    """What the warehouse half did for one subject (numbers only: they go into the result log)."""

    action: str  # erased, reported, would erase, would report
    responses: int
    answers: int
    model_rows: int = 0
    report: Path | None = None

    def log_entry(self) -> dict[str, t.Any]:
        return {
            "action": self.action,
            "responses": self.responses,
            "answers": self.answers,
            "model_rows": self.model_rows,
        }

    def describe(self) -> str:
        text = f"{self.action} {self.responses} response(s) and {self.answers} answer(s)"
        if self.action == "erased":
            text += f" (and {self.model_rows} model row(s))"
        if self.report is not None:
            text += f" to {self.report}"
        return text


class WarehouseHalf:
    """One warehouse, its tables checked on opening (a WarehouseError says what is missing)."""

    def __init__(
        self,
        url: str,
        layout: Layout,
        *,
        identity_attribute: str,
        erase: bool,
        report_dir: str | None,
    ) -> None:
        self.url = parse_url(url)
        self.erase = erase
        self.report_dir = Path(report_dir) if report_dir else None
        self.conn: Connection = connect(self.url)
        try:
            self.finder = SubjectFinder(
                Catalog(self.conn, layout), identity_attribute=identity_attribute, salt=salt_from_environment()
            )
        except BaseException:
            self.conn.close()
            raise

    @property
    def display(self) -> str:
        return self.url.display

    def close(self) -> None:
        self.conn.close()

    def preview(self, subject: Subject) -> Handled:
        """Counts only; nothing changes (the temporary tables go with the rollback)."""
        with self.conn.transaction(commit=False):
            responses, _ = self.finder.find(subject)
            found = self.finder.count(responses)
        return Handled("would erase" if self.erase else "would report", found.responses, found.answers)

    def handle(self, subject: Subject) -> Handled:
        """Erase (one transaction) or report the subject's rows."""
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        with self.conn.transaction(commit=self.erase):
            responses, users = self.finder.find(subject)
            found = self.finder.count(responses)
            if self.erase:
                removed = self.finder.erase(responses, users, now=now)
                return Handled("erased", found.responses, found.answers, sum(removed.models.values()))
            records = self.finder.report(responses)
        path = self._write_report(subject, records)
        return Handled("reported", found.responses, found.answers, report=path)

    def _write_report(self, subject: Subject, records: list[dict[str, t.Any]]) -> Path:
        assert self.report_dir is not None
        self.report_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", subject.reference or "")[:80].strip("-.")
        path = self.report_dir / f"{name + '-' if name else ''}{subject.key.split(':')[-1][:16]}.json"
        document = {
            "subject": {"email": subject.email, "site_users": dict(subject.site_users), "reference": subject.reference},
            "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "warehouse": self.display,
            "found_by": (
                "responses whose identity attribute equals a site's user id, or with a user attribute or an "
                "answer equal to the email address (trimmed, case-insensitive), or its privacy-recipe hash"
            ),
            "responses": [
                {**{k: v for k, v in r.items() if k != "answers_rows"}, "answer_rows": r["answers_rows"]}
                for r in records
            ],
        }
        # Personal data: readable by its owner only, written whole or not at all.
        partial = path.with_name(path.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, ensure_ascii=False, indent=2, default=str)
        os.replace(partial, path)
        return path
