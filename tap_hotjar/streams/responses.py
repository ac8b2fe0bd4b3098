"""`survey_responses` (GET /v1/sites/:site_id/surveys/:survey_id/responses, newest first) and
`survey_answers` (one record per element of a response's `answers`: no request)."""

from __future__ import annotations

import typing as t

import msgspec
from singer_sdk.schema.source import StreamSchema
from typing_extensions import override

from tap_hotjar import sdk_internals
from tap_hotjar.http.pages import decode_json, page_head
from tap_hotjar.streams.base import SCHEMAS, HotjarStream, NotFoundError, Run, RunStream
from tap_hotjar.streams.handoff import HeldAnswers
from tap_hotjar.streams.records import Conformer, as_text, json_kind, usable_id
from tap_hotjar.streams.surveys import SurveysStream
from tap_hotjar.timestamps import normalize_start_date, normalize_timestamp

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import requests
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context, Record

    from tap_hotjar.reconciliation import SurveyEvidence


# Responses whose answers are written by one sync of survey_answers, at most (it can
# wait for them: they are held as the lists the parsed responses already hold). Each
# sync costs the SDK a partition and a few log lines; each held response memory
# (measured, 60 surveys of 1,000 responses: peak RSS 59.9 MiB at 1,000, 56.9 at 300).
ANSWERS_PER_SYNC = 300


class Page(t.NamedTuple):
    """One page as read ahead: its raw JSON (a fraction of the parsed size), and what paging needs."""

    content: bytes
    created_times: list[str | None]  # each response's created_time, normalised; None if it has none
    # Fewer responses than asked for, yet a next page: under a strict reading of the
    # reference (`limit` items a page), some may be missing from this one.
    short: bool = False

    @property
    def size(self) -> int:
        return len(self.content)

    def reaches(self, stop_at: str | None) -> bool:
        """Whether this page holds a response older than the stop point (the last page to read)."""
        return stop_at is not None and any(c is not None and c < stop_at for c in self.created_times)


class Job(t.NamedTuple):
    context: Context
    stop_at: str | None


class SurveyResponsesStream(HotjarStream):
    """Responses of each survey, newest first, read down to the survey's bookmark only."""

    name = "survey_responses"
    path = "/v1/sites/{site_id}/surveys/{survey_id}/responses"
    parent_stream_type = SurveysStream
    primary_keys = ("id",)
    replication_key = "created_time"
    is_sorted = False  # newest first: the bookmark is promoted when a survey is read to its end
    state_partitioning_keys: t.ClassVar[list[str]] = ["site_id", "survey_id"]
    schema = StreamSchema(SCHEMAS)

    def __init__(self, tap: Tap, *, run: Run) -> None:
        super().__init__(tap, run=run)
        self._conformer = Conformer(
            self.schema,
            essential=frozenset({("id",), ("created_time",), ("answers",)}),
            added=frozenset({"site_id", "survey_id"}),
            conformed_by_stream=("answers", "answer"),
        )
        page_type = msgspec.defstruct("ResponsesPage", [("results", list[self._conformer.fast_type])])  # type: ignore[name-defined]
        self._page_type = msgspec.json.Decoder(page_type)
        self._sync_answers_after: dict[str, t.Any] | None = None
        self._answers_wanted = False  # survey_answers is selected (found once per survey)
        run.handoff.read_ahead.bind(self)
        sdk_internals.quiet_unsorted_warning()

    # The read-ahead's page reader (streams/read_ahead.py).

    def reads_pages(self) -> bool:
        return self.selected or self.has_selected_descendents

    def plan(self, context: Context) -> Job:
        return Job(context, self._stop_point(context))

    def fetch(self, job: Job, emit: t.Callable[[Page], bool]) -> None:
        # The SDK's own request path (auth, retries, metrics), on a read-ahead thread.
        for page in t.cast("Iterator[Page]", self.request_records(job.context)):
            if not emit(page) or page.reaches(job.stop_at):
                return  # no further page is requested

    @override
    def parse_response(self, response: requests.Response) -> Iterable[Page]:  # type: ignore[override]
        # One item per page, not per response: the SDK's thread decodes the responses
        # when it emits them, so that pages read ahead wait as compact bytes.
        head = page_head(response)
        short = bool(head.next_cursor) and len(head.results) < self.config["page_size"]
        if head.results or short:  # an empty last page holds nothing to write or to note
            yield Page(response.content, [_instant(row.created_time) for row in head.results], short)

    def _stop_point(self, context: Context) -> str | None:
        """max(bookmark, start_date), normalised: older responses are not wanted."""
        candidates = []
        bookmark = self.get_context_state(context).get("replication_key_value")
        if bookmark is not None:  # the state was checked when it was loaded
            candidates.append(normalize_timestamp(str(bookmark)))
        if start_date := self.config.get("start_date"):
            candidates.append(normalize_start_date(start_date))
        return max(candidates) if candidates else None

    # The SDK's thread.

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        assert context is not None
        site_id, survey_id = context["site_id"], context["survey_id"]
        stop_at = self._stop_point(context)
        answers_wanted = self._answers_wanted = any(child.selected for child in self.child_streams)
        pages = self.run.handoff.read_ahead.pages((site_id, survey_id), context)
        # A reconciliation run: what this survey's read found.
        evidence = self.run.evidence.survey(site_id, survey_id) if self.run.evidence is not None else None
        skipped_before = self.run.malformed.skipped[self.name]
        if evidence is not None:
            pages = _noting_short_pages(pages, evidence)
        try:
            decoded = (self._rows(page, n, site_id, survey_id, stop_at) for n, page in enumerate(pages, 1))
            rows = next(decoded, None)
            held = 0  # responses whose answers wait for the next sync of survey_answers
            while rows is not None:
                following = next(decoded, None)  # read ahead already: looking costs no request
                if answers_wanted:
                    held += len(rows)
                    self._sync_answers_after = self._answers_flush_point(rows, following, held)
                    if self._sync_answers_after is not None:
                        held = 0
                self.run.progress.responses += len(rows)
                if evidence is not None:
                    evidence.responses += len(rows)
                    evidence.answers += sum(len(row["answers"]) for row in rows)  # lists: the rule keeps no other
                yield from rows
                self.run.progress.tick()
                rows = following
            if evidence is not None:
                if self.run.malformed.skipped[self.name] != skipped_before:
                    evidence.responses_incomplete("responses were skipped as malformed")
                # Read to its end: complete, unless a page on the way said otherwise.
                evidence.responses_complete = evidence.incomplete_because is None
        except NotFoundError:
            self.logger.warning(
                "Survey %s of site %s answered 404 (deleted?); skipping it, its bookmark is left unchanged",
                survey_id,
                site_id,
            )
            # Not read to its stop point: no bookmark may be promoted from what was read.
            sdk_internals.discard_progress(self, context)
            if evidence is not None:
                evidence.responses_incomplete("its responses answered 404")

    def _answers_flush_point(self, rows: list[dict], following: list[dict] | None, held: int) -> dict | None:
        """The response after which survey_answers is synced for the answers held so far, or None.

        Once per survey, or per ANSWERS_PER_SYNC responses: each child sync costs the
        SDK a partition, log lines and metrics. It must come at a response that the
        stream maps let through (the SDK syncs no child of a filtered record), and no
        later than the survey's last such response, which a look at the next page
        (read ahead already) tells: if it has none, this page holds the last.
        """
        passing = self.stream_maps[0].get_filter_result
        last = next((row for row in reversed(rows) if passing(row)), None)
        if self.ABORT_AT_RECORD_COUNT is not None:  # --test: after the one response it reads
            return rows[0] if rows else None
        if last is None:
            return None
        if held < ANSWERS_PER_SYNC and following and any(passing(row) for row in following):
            return None  # a later response of this survey will sync them
        return last

    def _rows(self, page: Page, number: int, site_id: int, survey_id: str, stop_at: str | None) -> list[dict]:
        rows = []
        # One check of the whole page in C (on this thread: checking builds every
        # nested value, which many read-ahead threads at once would hold in memory).
        try:
            self._page_type.decode(page.content)
            valid = True
        except msgspec.ValidationError:
            valid = False
        for index, (row, created) in enumerate(
            zip(decode_json(page.content)["results"], page.created_times, strict=True)
        ):
            if created is not None and stop_at is not None and created < stop_at:
                continue  # older than the bookmark or start_date
            if created is None:
                which = _which(row, number, index, site_id, survey_id)
                if _id_of(row, number, index).startswith("#"):
                    why = f"id is {json_kind(row.get('id'), missing='id' not in row)}"
                else:
                    kind = json_kind(row.get("created_time"), missing="created_time" not in row)
                    why = f"created_time is {kind}, not an RFC 3339 date-time"
                self.run.malformed.skip(self.name, f"{which} (and its answers)", why)
                continue
            row["created_time"] = created
            row["site_id"] = site_id
            row["survey_id"] = survey_id
            answers = row.get("answers")
            if isinstance(answers, list):
                for answer in answers:
                    if isinstance(answer, dict) and "answer" in answer:
                        answer["answer"] = as_text(answer["answer"])
            if not valid:
                which = _which(row, number, index, site_id, survey_id)  # only a bad page's rows need it
                verdict = self._conformer.conform(row)
                if verdict.record is None:
                    self.run.malformed.skip(self.name, f"{which} (and its answers)", verdict.skipped_for or "")
                    continue
                if verdict.nulled:
                    self.run.malformed.null(self.name, which, verdict.nulled)
            rows.append(row)
        return rows

    @override
    def generate_child_contexts(self, record: Record, context: Context | None) -> Iterable[Context | None]:
        assert context is not None
        if self._answers_wanted and self.stream_maps[0].get_filter_result(record):
            answers = record.get("answers")
            self.run.handoff.hold_answers(
                HeldAnswers(
                    record["site_id"],
                    record["survey_id"],
                    record["id"],
                    record["created_time"],
                    answers if isinstance(answers, list) else [],
                )
            )
            if record is self._sync_answers_after:
                yield {"site_id": context["site_id"], "survey_id": context["survey_id"]}


class SurveyAnswersStream(RunStream):
    """One record per element of a response's `answers`, written after a batch of its responses: no request."""

    name = "survey_answers"
    parent_stream_type = SurveyResponsesStream
    primary_keys = ("response_id", "position")
    replication_key = None
    schema = StreamSchema(SCHEMAS)
    state_partitioning_keys: t.ClassVar[list[str]] = []

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        handoff = self.run.handoff
        progress = self.run.progress
        for held in handoff.take_answers():
            site_id, survey_id, response_id, created_time, answers = held
            types = handoff.question_types(survey_id)
            progress.answers += len(answers)
            for position, answer in enumerate(answers):
                get = answer.get
                question_id = get("question_id")
                yield {
                    "site_id": site_id,
                    "survey_id": survey_id,
                    "response_id": response_id,
                    "position": position,
                    "question_id": question_id,
                    "question_type": types.get(question_id)
                    if type(question_id) is str
                    else handoff.question_type(survey_id, question_id),
                    "answer": get("answer"),
                    "comment": get("comment"),
                    "sentiment": get("sentiment"),
                    "tags": get("tags"),
                    "created_time": created_time,
                }


def _noting_short_pages(pages: Iterable[Page], evidence: SurveyEvidence) -> Iterator[Page]:
    """A reconciliation cannot call a response gone if a page may have left it out."""
    for page in pages:
        if page.short:
            evidence.responses_incomplete("a page of its responses held fewer than asked for, yet named a next page")
        yield page


def _instant(value: object) -> str | None:
    try:
        return normalize_timestamp(value)  # type: ignore[arg-type]
    except ValueError:
        return None


def _which(row: dict[str, t.Any], page: int, index: int, site_id: int, survey_id: str) -> str:
    """A response as messages name it."""
    return f"response {_id_of(row, page, index)} of survey {survey_id!r} (site {site_id})"


def _id_of(row: dict[str, t.Any], page: int, index: int) -> str:
    """The response's id for a message, or its place on the page when it has no usable one."""
    response_id = usable_id(row.get("id"))
    return repr(response_id) if response_id is not None else f"#{index + 1} on page {page}"
