"""What every stream of the tap shares: the run's services, schemas, state and the HTTP conventions."""

from __future__ import annotations

import dataclasses
import importlib.resources
import random
import threading
import typing as t
import urllib.parse
from pathlib import Path

from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.schema.source import SchemaDirectory
from singer_sdk.streams import RESTStream, Stream
from typing_extensions import override

from tap_hotjar import sdk_internals
from tap_hotjar.errors import HotjarAPIError, HotjarAuthError
from tap_hotjar.http import policy
from tap_hotjar.http.pages import BrokenPageError, HotjarCursorPaginator, page_head
from tap_hotjar.streams.records import drop_undeclared

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterable

    import requests
    from backoff.types import Details
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context, Record
    from singer_sdk.streams._state import StreamStateManager

    from tap_hotjar.batches import BatchFiles, BatchRun
    from tap_hotjar.checkpoints import PacedStateWriter
    from tap_hotjar.http import HotjarConnection
    from tap_hotjar.progress import Progress
    from tap_hotjar.reconciliation import EvidenceRecorder
    from tap_hotjar.streams.handoff import SurveyHandoff
    from tap_hotjar.streams.records import Malformed


def _schema_dir() -> t.Any:
    # In the wheel the schemas sit inside the package; in a checkout (editable
    # install, tests) they are the top-level schemas/ folder.
    packaged = importlib.resources.files("tap_hotjar") / "schemas"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "schemas"


SCHEMAS = SchemaDirectory(_schema_dir())


@dataclasses.dataclass
class Run:
    """What one run's streams share. Made by the tap, handed to each stream it creates."""

    connection: HotjarConnection
    handoff: SurveyHandoff
    progress: Progress
    malformed: Malformed
    state_writer: PacedStateWriter
    batch: BatchRun | None = None  # BATCH messages (batch_config), None for RECORD messages
    batch_files: BatchFiles | None = None
    evidence: EvidenceRecorder | None = None  # a reconciliation run (reconcile_evidence_path), else None
    finished: bool = False

    def __post_init__(self) -> None:
        # Mid-sync, the live state covers records still in unannounced batch files.
        self.state_writer.live_state_is_safe = self.batch is None

    def finish(self) -> None:
        """The end of a sync: the last STATE, the summaries, no thread left behind."""
        if self.finished:
            return
        self.finished = True
        self.handoff.read_ahead.close()
        if self.batch_files is not None:
            self.batch_files.close_all()  # announced before the last STATE
        self.state_writer.flush()
        if self.evidence is not None:
            # Only a sync that got here wrote every record: a run killed or failing
            # leaves no evidence, so nothing is removed on its strength.
            self.evidence.finish()
        self.malformed.summary()
        self.progress.final()


def survey_context(site_id: int, survey_id: str) -> Context:
    """The context of a survey's child streams: ids only, and the state's partition key."""
    return {"site_id": site_id, "survey_id": survey_id}


class RunStream(sdk_internals.SchemaOnce, Stream):
    """A stream of this tap: made with the run it belongs to."""

    # Records are made to fit their schema by the tap itself (streams/records.py), and
    # fields the schema does not declare are dropped in post_process: the SDK's own
    # conformance would only do both again (measured: 12% of the tap's CPU).
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: Tap, *, run: Run) -> None:
        self.run = run
        self._indexed_state: StreamStateManager | None = None
        self._undeclared_reported: set[str] = set()
        super().__init__(tap)

    @property
    @override
    def state_manager(self) -> StreamStateManager:
        # Partition states found through an index: see sdk_internals (4).
        if self._indexed_state is None:
            self._indexed_state = sdk_internals.indexed_state_manager(self)
        return self._indexed_state

    @override
    def get_batch_config(self, config: t.Mapping) -> t.Any:
        if self.run.batch is None:
            return None
        return super().get_batch_config({"batch_config": self.run.batch.config})

    @override
    def get_batches(self, batch_config: t.Any, context: Context | None = None) -> Iterable[tuple[t.Any, list[str]]]:
        # Files shared by every sync of the stream (batches.py); when one is full, all
        # are announced: the others here, this one by the SDK, which then writes STATE.
        files = self.run.batch_files
        assert files is not None
        for record in sdk_internals.batch_records(self, context):
            if files.add(self.name, record):
                yield batch_config.encoding, files.close_all(keep=self.name)

    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        dropped = drop_undeclared(row, self.schema["properties"])
        if dropped and not dropped <= self._undeclared_reported:
            self._undeclared_reported |= dropped
            self.logger.warning(
                "Fields the API reference does not document were dropped from %s records: %s",
                self.name,
                ", ".join(sorted(dropped)),
            )
        return row

    @override
    def generate_child_contexts(self, record: Record, context: Context | None) -> Iterable[Context | None]:
        # No child (survey_questions, survey_answers): skip the SDK's copy of the context
        # and its filter check for every record. Parents override this.
        return ()

    @override
    def finalize_state_progress_markers(self, state: dict | None = None) -> None:
        super().finalize_state_progress_markers(state)
        if self.parent_stream_type is None and state is None:
            # The SDK calls this for each top-level stream after its sync; every other
            # stream here is a descendant of the one top-level stream, surveys.
            self.run.finish()


class TokenRejectedError(RetriableAPIError):
    """A 401/403 on a token we believed valid: retried once, at once, with a new token."""


class RetryAfterError(RetriableAPIError):
    """A 429: wait as long as the API asks (Retry-After), if it says."""

    def __init__(self, message: str, response: requests.Response, answer: policy.Answer) -> None:
        super().__init__(message, response)
        self.answer = answer


class NotFoundError(HotjarAPIError):
    """A 404: the site or survey does not exist (any more)."""


class HotjarStream(RunStream, RESTStream[str | None]):
    """A stream read from the Hotjar API: one paced session and token, one retry policy."""

    def __init__(self, tap: Tap, *, run: Run) -> None:
        super().__init__(tap, run=run)
        # Whether the request being retried on this thread already carries a token
        # fetched after a refusal (requests are made from several threads).
        self._reauthorized = threading.local()

    @property
    @override
    def url_base(self) -> str:
        return self.run.connection.api_url

    @property
    @override
    def authenticator(self) -> t.Any:
        return self.run.connection.authenticator

    @property
    @override
    def requests_session(self) -> requests.Session:
        return self.run.connection.session

    @property
    @override
    def timeout(self) -> t.Any:
        return policy.DEFAULT.timeout

    @override
    def get_url_params(self, context: Context | None, next_page_token: str | None) -> dict[str, t.Any]:
        params: dict[str, t.Any] = {"limit": self.config["page_size"]}
        if next_page_token:
            params["cursor"] = next_page_token  # URL-encoded by requests, never by hand
        return params

    @override
    def get_new_paginator(self) -> HotjarCursorPaginator:
        return HotjarCursorPaginator()

    # Errors: every status is judged by the project's one policy (http/policy.py).

    @override
    def validate_response(self, response: requests.Response) -> None:
        reauthorized = getattr(self._reauthorized, "value", False)
        answer = policy.classify(
            response.status_code,
            response.content if response.status_code >= 400 else b"",
            response.headers.get("Retry-After"),
            reauthorized=reauthorized,
        )
        self._reauthorized.value = answer.verdict is policy.Verdict.REAUTH
        path = request_path(response)
        if answer.verdict is policy.Verdict.OK:
            try:
                page_head(response)
            except BrokenPageError as exc:
                raise RetriableAPIError(
                    policy.broken_body(response.status_code, str(exc)).describe(path), response
                ) from None
        elif answer.verdict is policy.Verdict.REAUTH:
            self.run.connection.authenticator.invalidate(response.request.headers.get("Authorization"))
            raise TokenRejectedError(f"{answer.describe(path)}; retrying with a new token", response)
        elif answer.verdict is policy.Verdict.WAIT:
            raise RetryAfterError(answer.describe(path), response, answer)
        elif answer.verdict is policy.Verdict.RETRY:
            raise RetriableAPIError(answer.describe(path), response)
        elif answer.verdict is policy.Verdict.DENIED:
            raise HotjarAuthError(answer.describe(path))
        elif answer.verdict is policy.Verdict.NOT_FOUND:
            raise NotFoundError(answer.describe(path))
        else:
            raise HotjarAPIError(answer.describe(path))

    @override
    def response_error_message(self, response: requests.Response) -> str:
        return f"HTTP {response.status_code} for {request_path(response)}"

    # Retries: the SDK's backoff decorator, waiting as the policy says.

    @override
    def backoff_max_tries(self) -> int:
        return policy.DEFAULT.budget().ceiling()  # a ceiling only: the budget gives up first

    @override
    def backoff_wait_generator(self) -> Generator[float, t.Any, None]:  # type: ignore[override]
        budget = policy.DEFAULT.budget()
        exc = yield 0.0
        while True:
            wait = budget.next_wait(_answer_of(exc))
            if wait is None:
                return  # backoff gives up and raises `exc`
            exc = yield wait

    @override
    def backoff_jitter(self, value: float) -> float:
        return value + random.uniform(0, value * 0.1)  # noqa: S311 - not cryptographic

    @override
    def backoff_handler(self, details: Details) -> None:
        exc = details.get("exception")
        reason = str(exc) if isinstance(exc, RetriableAPIError) else type(exc).__name__
        self.logger.warning(
            "Attempt %d failed (%s); retrying in %.1f s", details.get("tries"), reason, details.get("wait") or 0.0
        )


def _answer_of(exc: BaseException | None) -> policy.Answer:
    """The policy's verdict behind an exception raised by a request."""
    if isinstance(exc, RetryAfterError):
        return exc.answer
    if isinstance(exc, TokenRejectedError):
        return policy.Answer(policy.Verdict.REAUTH, None)
    return policy.Answer(policy.Verdict.RETRY, None)  # 5xx, broken bodies, timeouts, resets


def request_path(response: requests.Response) -> str:
    """The path only: query strings hold cursors, which make messages long and unstable."""
    return urllib.parse.urlsplit(response.url).path or "?"
