"""Stream definitions: one class per stream, each a line of DESIGN.md."""

from __future__ import annotations

import datetime
import importlib.resources
import json
import typing as t
from pathlib import Path

import pendulum
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.schema.source import SchemaDirectory, StreamSchema
from singer_sdk.streams import Stream

from tap_hotjar.client import HotjarCursorPaginator, HotjarStream, NotFoundError, Page, page_head, response_body
from tap_hotjar.errors import HotjarAPIError
from tap_hotjar.prefetch import Prefetcher, context_key

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    import requests
    from singer_sdk.helpers.types import Context, Record


def _schema_dir() -> t.Any:
    # In the wheel the schemas sit inside the package; in a checkout (editable
    # install, tests) they are the top-level schemas/ folder.
    packaged = importlib.resources.files("tap_hotjar") / "schemas"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "schemas"


SCHEMAS = SchemaDirectory(_schema_dir())


def normalize_timestamp(value: str) -> str:
    """One fixed-width UTC form, so that string order is time order.

    The API mixes precisions and offsets; the SDK compares bookmarks as strings.
    RFC 3339 allows a lower-case `t` and `z`, which pendulum does not.
    """
    instant = pendulum.parse(value.strip().upper())
    if not isinstance(instant, datetime.datetime):
        msg = f"not a date-time: {value!r}"
        raise ValueError(msg)
    return instant.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def as_text(value: object) -> str:
    """An answer as the text the reference documents, whatever JSON type it came in.

    Numbers keep their digits (so `answer::int` works for nps), booleans are
    `true`/`false`, lists and objects their JSON.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def survey_context(site_id: int, survey_id: str) -> Context:
    """The context of one survey's child streams: ids only, and the state's partition key."""
    return {"site_id": site_id, "survey_id": survey_id}


class SchemaOnce:
    """Write a stream's SCHEMA message once per run.

    singer-sdk writes it again for every partition of a child stream, that is,
    three times per survey here: megabytes of repeated schemas for an account
    with many surveys, and work for the target each time.
    """

    _schema_written = False

    def _write_schema_message(self) -> None:
        if not self._schema_written:
            super()._write_schema_message()  # type: ignore[misc]
            self._schema_written = True


class SurveysStream(SchemaOnce, HotjarStream):
    """Surveys of every configured site, with their questions (one request per page)."""

    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.ROOT_ONLY

    name = "surveys"
    path = "/v1/sites/{site_id}/surveys"
    primary_keys = ("id",)
    replication_key = None
    schema = StreamSchema(SCHEMAS)

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        # Filled as surveys are read, consumed by the child streams: questions
        # are handed to survey_questions, question types to survey_responses.
        self.questions_by_survey: dict[str, list[dict]] = {}
        self._listings: dict[int, list[dict]] | None = None
        self._listing_site: int | None = None
        self.question_types: dict[str, dict[str, str | None]] = {}

    @property
    def partitions(self) -> list[dict]:
        return [{"site_id": site_id} for site_id in self.config["site_ids"]]

    def get_url_params(self, context: Context | None, next_page_token: str | None) -> dict[str, t.Any]:
        params = super().get_url_params(context, next_page_token)
        params["with_questions"] = "true"
        return params

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        surveys = response_body(response)["results"]
        responses = t.cast("SurveyResponsesStream", self._tap.streams["survey_responses"])
        # Not in a dry run (--test), which reads one record per stream.
        if responses.wanted and self._listing_site is not None and responses.ABORT_AT_RECORD_COUNT is None:
            # Start reading these surveys' responses now, in the order in which
            # the SDK will ask for them (see prefetch.py).
            for survey in surveys:
                if isinstance(survey, dict) and survey.get("id"):
                    responses.prefetch(survey_context(self._listing_site, survey["id"]))
        return surveys

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        assert context is not None
        if self._listings is None:
            # List every site's surveys up front (a page or two each), so that
            # responses can be read ahead across site boundaries too.
            self._listings = {}
            for partition in self.partitions:
                self._listings[partition["site_id"]] = list(self._list_site(partition))
        if context["site_id"] in self._listings:
            yield from self._listings.pop(context["site_id"])
        else:
            yield from self._list_site(context)
        if not self._listings:
            # The last site is done, children included: end the read-ahead threads.
            t.cast("SurveyResponsesStream", self._tap.streams["survey_responses"]).close()

    def _list_site(self, context: Context) -> Iterable[dict[str, t.Any]]:
        self._listing_site = context["site_id"]
        try:
            yield from super().get_records(context)
        except NotFoundError:
            msg = (
                f"Hotjar site {context['site_id']} was not found (HTTP 404). "
                "Check site_ids: each must be a site of the API key's organization."
            )
            raise HotjarAPIError(msg) from None
        finally:
            self._listing_site = None

    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        assert context is not None
        row["site_id"] = context["site_id"]
        questions = row.get("questions") or []
        if self._tap.streams["survey_questions"].selected:
            self.questions_by_survey[row["id"]] = questions
        self.question_types[row["id"]] = {
            str(q["id"]): q.get("type") for q in questions if isinstance(q, dict) and q.get("id")
        }
        return row

    def get_child_context(self, record: Record, context: Context | None) -> Context:
        return survey_context(record["site_id"], record["id"])


class SurveyQuestionsStream(SchemaOnce, Stream):
    """The questions of each survey, from the survey list response: no request."""

    name = "survey_questions"
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.ROOT_ONLY
    parent_stream_type = SurveysStream
    primary_keys = ("survey_id", "id")
    replication_key = None
    schema = StreamSchema(SCHEMAS)
    # No per-survey entries in state: this stream has nothing to resume.
    state_partitioning_keys: t.ClassVar[list[str]] = []

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        assert context is not None
        surveys = t.cast("SurveysStream", self._tap.streams["surveys"])
        questions = surveys.questions_by_survey.pop(context["survey_id"], [])
        for position, question in enumerate(questions):
            yield {
                **question,
                "site_id": context["site_id"],
                "survey_id": context["survey_id"],
                "position": position,
            }


class SurveyResponsesStream(SchemaOnce, HotjarStream):
    """Responses of each survey, newest first, read down to the bookmark only."""

    name = "survey_responses"
    # Unknown top-level fields are dropped; nested values are kept as the API sent them.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.ROOT_ONLY
    path = "/v1/sites/{site_id}/surveys/{survey_id}/responses"
    parent_stream_type = SurveysStream
    primary_keys = ("id",)
    replication_key = "created_time"
    is_sorted = False  # newest first: the bookmark is promoted when a survey is done
    schema = StreamSchema(SCHEMAS)

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._prefetcher = Prefetcher(self._read_survey)
        # (site_id, survey_id) -> normalised stop point, set on the main thread
        # before a survey is read, only read by the prefetch workers.
        self._stop_points: dict[tuple, str | None] = {}
        self._stop_at: str | None = None
        self._question_types: dict[str, str | None] = {}

    @property
    def wanted(self) -> bool:
        return self.selected or self.has_selected_descendents

    def close(self) -> None:
        """End the read-ahead threads (at the end of a sync)."""
        self._prefetcher.close()

    def prefetch(self, context: Context) -> None:
        """Start reading a survey's pages ahead of its turn (see prefetch.py)."""
        self._stop_points[context_key(context)] = self._stop_point(context)
        self._prefetcher.schedule(context)

    def _stop_point(self, context: Context) -> str | None:
        """Normalised max(bookmark, start_date): older responses are not wanted."""
        candidates = []
        bookmark = self.get_context_state(context).get("replication_key_value")
        if bookmark is not None:  # load_state has checked that it is a timestamp
            candidates.append(normalize_timestamp(str(bookmark)))
        if start_date := self.config.get("start_date"):
            candidates.append(normalize_timestamp(start_date))
        return max(candidates) if candidates else None

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        assert context is not None
        key = context_key(context)
        if key not in self._stop_points:
            self._stop_points[key] = self._stop_point(context)
        self._stop_at = self._stop_points[key]
        surveys = t.cast("SurveysStream", self._tap.streams["surveys"])
        self._question_types = surveys.question_types.get(context["survey_id"], {})
        answers = self._answers_stream
        if answers.selected:
            answers.begin_partition()
        try:
            for page in self._prefetcher.pages(context):
                yield from t.cast("Page", page).rows()
        except NotFoundError:
            self.logger.warning(
                "Survey %s of site %s answered 404 (deleted?); skipping it, its bookmark is left unchanged",
                context["survey_id"],
                context["site_id"],
            )
            # Do not promote a bookmark for a survey that was not read to the end.
            self.get_context_state(context).pop("progress_markers", None)
        finally:
            self._stop_points.pop(key, None)

    def _read_survey(self, context: Context, emit: t.Callable[[object], bool]) -> None:
        """Follow one survey's cursors down to its stop point (on a worker thread).

        Each page goes to the consumer as its raw bytes and the normalised
        created_time of each response: a fraction of the parsed page's memory.
        """
        stop_at = self._stop_points.get(context_key(context))
        reached_stop = False
        paginator = HotjarCursorPaginator(lambda: reached_stop)
        request = self.request_decorator(self._request)
        url = self.get_url(context)
        while not paginator.finished:
            params = self.get_url_params(context, paginator.current_value)
            prepared = self.build_prepared_request(method="GET", url=url, params=params, headers=self.http_headers)
            response = request(prepared, context)
            created = [self._created_time(row.created_time, context) for row in page_head(response).results]
            reached_stop = stop_at is not None and any(c < stop_at for c in created)
            if not emit(Page(response.content, created)):
                return
            paginator.advance(response)

    @staticmethod
    def _created_time(raw: object, context: Context) -> str:
        try:
            return normalize_timestamp(raw)  # type: ignore[arg-type]
        except (ValueError, TypeError):
            msg = (
                f"A response of survey {context['survey_id']} has no valid created_time "
                f"({str(raw)[:60]!r}); cannot place it in time"
            )
            raise HotjarAPIError(msg) from None

    @property
    def _answers_stream(self) -> SurveyAnswersStream:
        return t.cast("SurveyAnswersStream", self._tap.streams["survey_answers"])

    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        assert context is not None
        if self._stop_at is not None and row["created_time"] < self._stop_at:
            return None  # older than the bookmark or start_date
        row["site_id"] = context["site_id"]
        row["survey_id"] = context["survey_id"]
        for answer in row.get("answers") or ():
            if isinstance(answer, dict) and not isinstance(answer.get("answer"), (str, type(None))):
                answer["answer"] = as_text(answer["answer"])
        answers = self._answers_stream
        if answers.selected:
            answers.emit_for_response(row, self._question_types)
        return row

    def generate_child_contexts(self, record: Record, context: Context | None) -> Iterable[Context | None]:
        # Answers are written by post_process, from the response in hand. A child
        # sync per response would cost a SCHEMA message and a partition each.
        return ()


class SurveyAnswersStream(SchemaOnce, Stream):
    """One record per element of a response's `answers`: no request."""

    name = "survey_answers"
    parent_stream_type = SurveyResponsesStream
    primary_keys = ("response_id", "position")
    replication_key = None
    schema = StreamSchema(SCHEMAS)
    state_partitioning_keys: t.ClassVar[list[str]] = []
    # Records are built here field by field from the schema's own names, so
    # there is nothing to conform (measured: conformance was 45% of answer cost).
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        return ()  # written by survey_responses, see emit_for_response

    def begin_partition(self) -> None:
        """Announce the schema before the first answer (once per run, see SchemaOnce)."""
        self._write_schema_message()

    def emit_for_response(self, response: Record, question_types: dict[str, str | None]) -> None:
        for position, answer in enumerate(response.get("answers") or []):
            if not isinstance(answer, dict):
                answer = {"answer": answer}  # noqa: PLW2901 - keep odd shapes, lose nothing
            question_id = answer.get("question_id")
            record = {
                "site_id": response["site_id"],
                "survey_id": response["survey_id"],
                "response_id": response["id"],
                "position": position,
                "question_id": question_id,
                "question_type": question_types.get(question_id) if question_id else None,
                "answer": answer.get("answer"),
                "comment": answer.get("comment"),
                "sentiment": answer.get("sentiment"),
                "tags": answer.get("tags"),
                "created_time": response["created_time"],
            }
            self._write_record_message(record)


# In sync order; the tap discovers exactly these.
STREAM_TYPES: tuple[type[Stream], ...] = (
    SurveysStream,
    SurveyQuestionsStream,
    SurveyResponsesStream,
    SurveyAnswersStream,
)
