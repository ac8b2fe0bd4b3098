"""What the survey streams hand each other during a run.

singer-sdk syncs a survey's child streams right after the survey record, depth first:
survey -> its questions -> its responses (-> the answers of each page of responses).
The parents put here what their children need; nothing else is shared:

- surveys -> survey_questions: the survey's questions;
- surveys -> survey_answers: the survey's question types (by question id);
- survey_responses -> survey_answers: the answers of the responses just emitted;
- surveys -> the read-ahead of response pages, started as soon as surveys are listed.
"""

from __future__ import annotations

import typing as t

from tap_hotjar.streams.read_ahead import ReadAhead
from tap_hotjar.streams.records import string_field

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from tap_hotjar.http.pacing import LatencyMeter


class HeldAnswers(t.NamedTuple):
    """The answers of one emitted response, with what each answer record repeats of it."""

    site_id: int
    survey_id: str
    response_id: str
    created_time: str
    answers: list[dict[str, t.Any]]


class SurveyHandoff:
    """Questions, question types and answers passed from parent to child streams, and the read-ahead."""

    def __init__(self, latency: LatencyMeter, rate: float) -> None:
        self.read_ahead = ReadAhead(latency, rate)
        self._survey_id: str | None = None
        self._questions: list[t.Any] = []
        self._question_types: dict[str, str | None] = {}
        self._answers: list[HeldAnswers] = []

    # surveys -> survey_questions, survey_answers

    def begin_survey(self, survey_id: str, questions: list[t.Any]) -> None:
        """The survey whose children the SDK syncs next, with its questions as listed."""
        self._survey_id = survey_id
        self._questions = questions
        self._question_types = {
            # As the question's own record has it (a number conformed to its text).
            str(q["id"]): string_field(q.get("type"))
            for q in questions
            if isinstance(q, dict) and isinstance(q.get("id"), (str, int)) and not isinstance(q.get("id"), bool)
        }
        self._answers.clear()

    def questions(self, survey_id: str) -> list[t.Any]:
        return self._questions if self._current(survey_id) else []

    def question_type(self, survey_id: str, question_id: object) -> str | None:
        if not self._current(survey_id) or question_id is None:
            return None
        return self._question_types.get(str(question_id))

    def question_types(self, survey_id: str) -> t.Mapping[str, str | None]:
        """Question id -> type, for `question_type` many times over (a string id: the same answer)."""
        return self._question_types if self._current(survey_id) else {}

    def _current(self, survey_id: str) -> bool:
        if survey_id != self._survey_id:
            # The SDK syncs children right after their parent; if that ever changes,
            # children would silently get another survey's questions: fail instead.
            msg = f"survey {survey_id} asked for its questions while survey {self._survey_id} is being synced"
            raise RuntimeError(msg)
        return True

    # survey_responses -> survey_answers

    def hold_answers(self, held: HeldAnswers) -> None:
        self._answers.append(held)

    def take_answers(self) -> Iterator[HeldAnswers]:
        """The answers held since the last take, oldest first."""
        held, self._answers = self._answers, []
        yield from held
