"""Reconciliation evidence: what a full read of Hotjar found, for `hotjar-reconcile` to compare with the warehouse.

A run with `reconcile_evidence_path` set is a reconciliation run: it ignores the
bookmarks it is given and reads every response (down to `start_date`), and it counts,
per site and per survey, the records it wrote and whether what it read was complete.
Only a run that finishes writes the evidence, atomically; a run that starts removes the
evidence of any earlier run first. So a run killed or failing at any moment leaves no
evidence, and nothing can be removed on the strength of it (docs/deletions.md).

"Complete" is decided from what the tap saw, never assumed:
- a site is complete when every survey its listing named was written (none skipped as
  malformed); its surveys not written in this run are gone from Hotjar;
- a survey's questions are complete when the listing held a list of them and every one
  was written; its responses when its pages were read to the end (or to `start_date`),
  without a 404 and without a response skipped as malformed.

The counts are of records the tap produced, before stream maps: `hotjar-reconcile`
checks that the warehouse holds exactly as many rows stamped by this run, so a load
that lost, filtered or never finished records leaves those surveys alone.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import typing as t
import uuid
from pathlib import Path

from tap_hotjar.errors import HotjarConfigError, HotjarError

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Iterable, Mapping

    from singer_sdk import Stream

FORMAT = "tap-hotjar reconciliation evidence"
FORMAT_VERSION = 1


@dataclasses.dataclass
class SiteEvidence:
    site_id: int
    surveys: int = 0  # survey records written
    complete: bool = True  # the listing was read to its end and no survey was skipped
    incomplete_because: str | None = None

    def listing_incomplete(self, because: str) -> None:
        self.complete = False
        self.incomplete_because = self.incomplete_because or because


@dataclasses.dataclass
class SurveyEvidence:
    site_id: int
    survey_id: str
    questions_listed: bool = False  # the listing held a list of questions for it
    questions: int = 0
    questions_complete: bool = False
    responses: int = 0
    answers: int = 0  # in the `answers` lists of the responses written
    responses_complete: bool = False
    incomplete_because: str | None = None  # for the WARNING hotjar-reconcile gives

    def responses_incomplete(self, because: str) -> None:
        self.responses_complete = False
        self.incomplete_because = self.incomplete_because or because


@dataclasses.dataclass
class Evidence:
    """A finished reconciliation run, as written to (and read from) the evidence file."""

    run_id: str
    started_at: datetime.datetime  # before the first record: every record's time_extracted is later
    finished_at: datetime.datetime  # after the last record
    start_date: str | None  # responses older than this were not read
    sites: list[SiteEvidence]
    surveys: list[SurveyEvidence]
    tap_version: str = ""

    def to_json(self) -> dict[str, t.Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "tap_version": self.tap_version,
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "start_date": self.start_date,
            "sites": [dataclasses.asdict(s) for s in self.sites],
            "surveys": [dataclasses.asdict(s) for s in self.surveys],
        }


class EvidenceError(HotjarError):
    """The evidence file is missing, unreadable, or not a finished run's evidence."""


def reconcile_problems(config: Mapping[str, t.Any], streams: Iterable[Stream]) -> list[str]:
    """What makes a config unfit for a reconciliation run (said before anything is read)."""
    problems = []
    if config.get("batch_config"):
        # Rows loaded from BATCH files carry no _sdc_extracted_at (singer-sdk's targets
        # stamp it from RECORD messages), so no row could be shown to be still there.
        problems.append(
            "reconcile_evidence_path cannot be combined with batch_config: a reconciliation needs RECORD messages"
        )
    deselected = sorted(stream.name for stream in streams if not stream.selected)
    if deselected:
        problems.append(
            "reconcile_evidence_path needs every stream selected (a reconciliation compares each table with "
            f"Hotjar), but the catalog deselects {', '.join(deselected)}"
        )
    return problems


def read_evidence(path: str | os.PathLike[str]) -> Evidence:
    """The evidence of a finished reconciliation run, or an EvidenceError saying what is wrong."""
    where = Path(path)
    try:
        doc = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = (
            f"no reconciliation evidence at {where}: no reconciliation run has finished since the last one "
            "was applied (run the extractor with reconcile_evidence_path first, e.g. tap-hotjar--reconcile)"
        )
        raise EvidenceError(msg) from None
    except (OSError, ValueError) as exc:
        raise EvidenceError(f"cannot read the reconciliation evidence {where}: {exc}") from None
    try:
        if doc["format"] != FORMAT or doc["format_version"] != FORMAT_VERSION:
            raise ValueError(f"format {doc.get('format')!r} version {doc.get('format_version')!r}")
        evidence = Evidence(
            run_id=str(doc["run_id"]),
            started_at=_instant(doc["started_at"]),
            finished_at=_instant(doc["finished_at"]),
            start_date=doc["start_date"],
            sites=[SiteEvidence(**s) for s in doc["sites"]],
            surveys=[SurveyEvidence(**s) for s in doc["surveys"]],
            tap_version=str(doc.get("tap_version", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EvidenceError(f"{where} is not reconciliation evidence this version can read ({exc})") from None
    if evidence.finished_at < evidence.started_at:
        raise EvidenceError(f"{where} is not reconciliation evidence: it finished before it started")
    return evidence


def _instant(value: object) -> datetime.datetime:
    parsed = datetime.datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return parsed


class EvidenceRecorder:
    """The tap side: counts what a reconciliation run writes, and writes the evidence when it finishes."""

    def __init__(self, path: str, *, start_date: str | None, tap_version: str, logger: logging.Logger) -> None:
        self.path = Path(path).expanduser()
        self._logger = logger
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._start_date = start_date
        self._tap_version = tap_version
        self._started_at: datetime.datetime | None = None
        self._sites: dict[int, SiteEvidence] = {}
        self._surveys: dict[tuple[int, str], SurveyEvidence] = {}

    def begin(self) -> None:
        """Before the first record: no earlier evidence may outlive this run's start."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.unlink(missing_ok=True)
            # Written now so that a folder the run cannot write to fails it at once,
            # not after every response has been read.
            self._partial.write_text('{"running": true}\n', encoding="utf-8")
        except OSError as exc:
            msg = f"reconcile_evidence_path {self.path}: cannot write there ({exc.strerror or exc})"
            raise HotjarConfigError(msg) from None
        self._started_at = _now()

    # What the streams report.

    def site(self, site_id: int) -> SiteEvidence:
        return self._sites.setdefault(site_id, SiteEvidence(site_id))

    def survey(self, site_id: int, survey_id: str) -> SurveyEvidence:
        key = (site_id, survey_id)
        if key not in self._surveys:
            self._surveys[key] = SurveyEvidence(site_id, survey_id)
        return self._surveys[key]

    # The end of a run that finished.

    def finish(self) -> Evidence:
        """Write the evidence (atomically: a reader sees the whole file or none)."""
        if self._started_at is None:
            msg = "the reconciliation run finished without having begun"
            raise RuntimeError(msg)
        evidence = Evidence(
            run_id=str(uuid.uuid4()),
            started_at=self._started_at,
            finished_at=_now(),
            start_date=self._start_date,
            sites=sorted(self._sites.values(), key=lambda s: s.site_id),
            surveys=sorted(self._surveys.values(), key=lambda s: (s.site_id, s.survey_id)),
            tap_version=self._tap_version,
        )
        with self._partial.open("w", encoding="utf-8") as handle:
            json.dump(evidence.to_json(), handle, ensure_ascii=False, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(self._partial, self.path)
        for site in evidence.sites:
            if not site.complete:
                self._logger.warning("Reconciliation: site %s: %s", site.site_id, site.incomplete_because)
        for survey in evidence.surveys:
            if not survey.responses_complete:
                self._logger.warning(
                    "Reconciliation: survey %s of site %s: %s",
                    survey.survey_id,
                    survey.site_id,
                    survey.incomplete_because or "its responses were not read to the end",
                )
        incomplete = sum(not s.responses_complete or not s.questions_complete for s in evidence.surveys)
        self._logger.info(
            "Reconciliation evidence written to %s: %d site(s), %d survey(s), %d of them not read completely "
            "(hotjar-reconcile leaves those as they are)",
            self.path,
            len(evidence.sites),
            len(evidence.surveys),
            incomplete,
        )
        return evidence


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
