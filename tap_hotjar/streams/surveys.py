"""`surveys` (GET /v1/sites/:site_id/surveys?with_questions=true) and `survey_questions` (no request)."""

from __future__ import annotations

import copy
import typing as t

import msgspec
from singer_sdk.schema.source import StreamSchema
from typing_extensions import override

from tap_hotjar.errors import HotjarAPIError
from tap_hotjar.http.pages import decode_json, page_head
from tap_hotjar.streams.base import SCHEMAS, HotjarStream, NotFoundError, Run, RunStream, survey_context
from tap_hotjar.streams.records import Conformer, json_kind, usable_id

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context, Record


class _RawPage(msgspec.Struct):
    results: list[msgspec.Raw]


class _SurveyHead(msgspec.Struct):
    id: t.Any = None


_decode_raw_page = msgspec.json.Decoder(_RawPage).decode
_decode_survey_head = msgspec.json.Decoder(_SurveyHead).decode


class SurveysStream(HotjarStream):
    """Surveys of every configured site, with their questions (one request per 100 surveys)."""

    name = "surveys"
    path = "/v1/sites/{site_id}/surveys"
    primary_keys = ("id",)
    replication_key = None
    schema = StreamSchema(SCHEMAS)

    def __init__(self, tap: Tap, *, run: Run) -> None:
        super().__init__(tap, run=run)
        self._conformer = Conformer(self.schema, essential=frozenset({("id",)}), added=frozenset({"site_id"}))
        # Every site's surveys, listed up front, each kept as its raw JSON (a fraction of
        # its parsed size: an account's whole listing is held until its surveys are written).
        self._listings: dict[int, list[tuple[int, bytes]]] | None = None
        # The questions of the survey just yielded, as the API sent them, for its children
        # (the survey record's own `questions` may have been nulled by the rule).
        self._questions: list[t.Any] = []
        self._short_page_seen = False

    @property
    @override
    def partitions(self) -> list[dict]:
        return [{"site_id": site_id} for site_id in self.config["site_ids"]]

    @override
    def get_url_params(self, context: Context | None, next_page_token: str | None) -> dict[str, t.Any]:
        return {**super().get_url_params(context, next_page_token), "with_questions": "true"}

    @override
    def parse_response(self, response: requests.Response) -> Iterable[bytes]:  # type: ignore[override]
        # Each survey as its raw JSON: decoded when it is written (see get_records).
        results = [bytes(raw) for raw in _decode_raw_page(response.content).results]
        if page_head(response).next_cursor and len(results) < self.config["page_size"]:
            # Fewer surveys than asked for, yet a next page: some may be missing from it.
            self._short_page_seen = True
        return results

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        assert context is not None
        site_id = context["site_id"]
        if self._listings is None:
            if self.run.evidence is not None:
                self.run.evidence.begin()  # before the first record of the run
            # Every site is listed first (a page or two each), so that the read-ahead
            # has every survey's responses to read, across site boundaries too.
            self._listings = {p["site_id"]: self._list_site(p["site_id"]) for p in self.partitions}
        listing = self._listings.pop(site_id, None)
        evidence = self.run.evidence
        for position, raw in listing if listing is not None else self._list_site(site_id):
            item = decode_json(raw)
            # The question records are judged on the questions as sent: conforming the
            # survey record must not change (null) values in them first.
            questions = copy.deepcopy(item.get("questions"))
            survey = self._conform({**item, "site_id": site_id}, site_id, position)
            if survey is not None:
                self._questions = questions if isinstance(questions, list) else []
                if evidence is not None:
                    evidence.site(site_id).surveys += 1
                    evidence.survey(site_id, survey["id"]).questions_listed = isinstance(questions, list)
                yield survey
            elif evidence is not None:
                evidence.site(site_id).listing_incomplete("a survey it lists was skipped as malformed")

    def _list_site(self, site_id: int) -> list[tuple[int, bytes]]:
        listed = []
        self._short_page_seen = False
        read_ahead = self.run.handoff.read_ahead
        dry_run = self.ABORT_AT_RECORD_COUNT is not None  # --test reads one record per stream
        try:
            for position, raw in enumerate(t.cast("Iterable[bytes]", self.request_records({"site_id": site_id}))):
                survey_id = usable_id(_decode_survey_head(raw).id)
                if survey_id is None:
                    which = f"survey #{position + 1} listed for site {site_id} (and its questions and responses)"
                    kind = json_kind(decode_json(raw).get("id"), missing=b'"id"' not in raw)
                    self.run.malformed.skip(self.name, which, f"id is {kind}")
                    if self.run.evidence is not None:
                        self.run.evidence.site(site_id).listing_incomplete("a survey it lists was skipped as malformed")
                    continue
                listed.append((position, raw))
                if not dry_run:
                    read_ahead.schedule((site_id, survey_id), survey_context(site_id, survey_id))
        except NotFoundError:
            msg = (
                f"Hotjar site {site_id} was not found (HTTP 404). "
                "Check site_ids: each must be a site of the API key's organization."
            )
            raise HotjarAPIError(msg) from None
        self.run.progress.surveys_listed += len(listed)
        if self._short_page_seen and self.run.evidence is not None:
            self.run.evidence.site(site_id).listing_incomplete(
                "a page of its surveys held fewer than asked for, yet named a next page"
            )
        return listed

    def _conform(self, survey: dict[str, t.Any], site_id: int, position: int) -> dict[str, t.Any] | None:
        verdict = self._conformer.conform(survey)
        which = f"survey {survey.get('id')!r} of site {site_id}"
        if verdict.record is None:
            which = f"survey #{position + 1} listed for site {site_id}"
            self.run.malformed.skip(self.name, f"{which} (and its questions and responses)", verdict.skipped_for or "")
        elif verdict.nulled:
            self.run.malformed.null(self.name, which, verdict.nulled)
        return verdict.record

    @override
    def generate_child_contexts(self, record: Record, context: Context | None) -> Iterable[Context | None]:
        # Called for the record get_records just yielded, before it yields the next.
        self.run.handoff.begin_survey(record["id"], self._questions)
        self.run.progress.surveys_started += 1
        yield survey_context(record["site_id"], record["id"])


class SurveyQuestionsStream(RunStream):
    """The questions of each survey, from the survey list: no request."""

    name = "survey_questions"
    parent_stream_type = SurveysStream
    primary_keys = ("survey_id", "id")
    replication_key = None
    schema = StreamSchema(SCHEMAS)
    # No per-survey entries in state: this stream has nothing to resume.
    state_partitioning_keys: t.ClassVar[list[str]] = []

    def __init__(self, tap: Tap, *, run: Run) -> None:
        super().__init__(tap, run=run)
        self._conformer = Conformer(
            self.schema, essential=frozenset({("id",)}), added=frozenset({"site_id", "survey_id", "position"})
        )

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        assert context is not None
        site_id, survey_id = context["site_id"], context["survey_id"]
        skipped_before = self.run.malformed.skipped[self.name]
        written = 0
        for position, question in enumerate(self.run.handoff.questions(survey_id)):
            which = f"question #{position + 1} of survey {survey_id!r} (site {site_id})"
            if not isinstance(question, dict):
                self.run.malformed.skip(self.name, which, f"it is {json_kind(question)}, not an object")
                continue
            verdict = self._conformer.conform(
                {**question, "site_id": site_id, "survey_id": survey_id, "position": position}
            )
            if verdict.record is None:
                self.run.malformed.skip(self.name, which, verdict.skipped_for or "")
                continue
            if verdict.nulled:
                self.run.malformed.null(self.name, which, verdict.nulled)
            written += 1
            yield verdict.record
        if self.run.evidence is not None:
            survey = self.run.evidence.survey(site_id, survey_id)
            survey.questions = written
            none_skipped = self.run.malformed.skipped[self.name] == skipped_before
            survey.questions_complete = survey.questions_listed and none_skipped
