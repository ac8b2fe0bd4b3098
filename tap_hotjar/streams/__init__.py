"""The tap's four streams, each a line of the contract (docs/streams.md).

- `base`: what every stream shares (the run, schemas, state, HTTP conventions);
- `surveys`: `surveys` and `survey_questions`;
- `responses`: `survey_responses` and `survey_answers`;
- `handoff`: what parent streams hand their children; `read_ahead`: response pages
  read ahead on worker threads; `records`: records made to fit their schemas.
"""

from __future__ import annotations

from tap_hotjar.streams.responses import SurveyAnswersStream, SurveyResponsesStream
from tap_hotjar.streams.surveys import SurveyQuestionsStream, SurveysStream

# In sync order; the tap discovers exactly these.
STREAM_TYPES = (SurveysStream, SurveyQuestionsStream, SurveyResponsesStream, SurveyAnswersStream)
STREAM_NAMES = frozenset(str(vars(stream_type)["name"]) for stream_type in STREAM_TYPES)

__all__ = [
    "STREAM_NAMES",
    "STREAM_TYPES",
    "SurveyAnswersStream",
    "SurveyQuestionsStream",
    "SurveyResponsesStream",
    "SurveysStream",
]
