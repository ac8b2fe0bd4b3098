"""`surveys` (GET /v1/sites/:site_id/surveys?with_questions=true) and `survey_questions` (no request)."""

from __future__ import annotations

import copy
import typing as t

from singer_sdk.schema.source import StreamSchema
from typing_extensions import override

from tap_hotjar.errors import HotjarAPIError
from tap_hotjar.http.pages import page_results
from tap_hotjar.streams.base import SCHEMAS, HotjarStream, NotFoundError, Run, RunStream, survey_context
from tap_hotjar.streams.records import Conformer, json_kind

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context, Record


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
        self._listings: dict[int, list[dict[str, t.Any]]] | None = None
        # Each listed survey's questions as the API sent them, for survey_questions and
        # survey_answers: the survey record's own `questions` may have been nulled.
        self._questions: dict[tuple[int, str], list[t.Any]] = {}

    @property
    @override
    def partitions(self) -> list[dict]:
        return [{"site_id": site_id} for site_id in self.config["site_ids"]]

    @override
    def get_url_params(self, context: Context | None, next_page_token: str | None) -> dict[str, t.Any]:
        return {**super().get_url_params(context, next_page_token), "with_questions": "true"}

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        return page_results(response)

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        assert context is not None
        if self._listings is None:
            # Every site is listed first (a page or two each), so that the read-ahead
            # has every survey's responses to read, across site boundaries too.
            self._listings = {p["site_id"]: self._list_site(p["site_id"]) for p in self.partitions}
        listing = self._listings.pop(context["site_id"], None)
        yield from listing if listing is not None else self._list_site(context["site_id"])

    def _list_site(self, site_id: int) -> list[dict[str, t.Any]]:
        surveys = []
        read_ahead = self.run.handoff.read_ahead
        dry_run = self.ABORT_AT_RECORD_COUNT is not None  # --test reads one record per stream
        try:
            for position, item in enumerate(self.request_records({"site_id": site_id})):
                # The question records are checked on their own: the survey record's
                # conformance must not change (null) values they still need to judge.
                questions = copy.deepcopy(item.get("questions"))
                survey = self._conform({**item, "site_id": site_id}, site_id, position)
                if survey is None:
                    continue
                surveys.append(survey)
                self._questions[(site_id, survey["id"])] = questions if isinstance(questions, list) else []
                if not dry_run:
                    read_ahead.schedule((site_id, survey["id"]), survey_context(site_id, survey["id"]))
        except NotFoundError:
            msg = (
                f"Hotjar site {site_id} was not found (HTTP 404). "
                "Check site_ids: each must be a site of the API key's organization."
            )
            raise HotjarAPIError(msg) from None
        self.run.progress.surveys_listed += len(surveys)
        return surveys

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
        self.run.handoff.begin_survey(record["id"], self._questions.pop((record["site_id"], record["id"]), []))
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
            yield verdict.record
