"""The rule of issue #14, written once as a reference: what the tap must emit for the
data the API served, malformed or not.

Given what the simulator served (the ground truth with one item mutated), ``expect``
returns the records each stream must hold, the bookmarks, and the warnings the tap
owes, or that the run must fail (a broken list page). The decisions per field are
the rule's:

* conformed silently (B1): a JSON number where the reference says string becomes
  its decimal text; an answer's ``answer`` of any JSON type becomes text (the tap's
  ``as_text`` form); a response's ``created_time`` in any RFC 3339 form is
  normalised to ``%Y-%m-%dT%H:%M:%S.%f+00:00`` UTC;
* record skipped (B2): a response without a usable ``id`` or RFC 3339
  ``created_time``, or whose ``answers`` is not an array of objects; a survey
  without a usable ``id`` (with its questions and responses); a question that is
  not an object or has no usable ``id`` (as a survey_questions record only);
* value dropped (B3): any other value of a type the stream's JSON schema does not
  allow: the smallest enclosing value the schema lets be null becomes null
  (``schemas/*.json`` drive this, so the oracle follows the declared types);
* kept (B4): valid values however large, undocumented fields (dropped at the top
  level of a record, kept inside nested values), null or absent optional fields.

Where the rule leaves room, this reading (each choice is one line here, so that a
different reading is a one-line change):

* one malformed served value owes one WARNING, whatever number of records it
  touches (a question's bad ``choices`` shows in its survey_questions record and in
  its survey's ``questions``: one warning; the summary counts 1);
* B3 applies to every stream, nested values included: a question that is not an
  object, or whose ``id`` is null/an array/an object, makes its survey's
  ``questions`` null in the surveys record (the items are objects with a string
  ``id``, not nullable: the same case as ``tags[0]: 5`` -> ``tags`` null); a
  question without an ``id`` key, or with ``""``, is still valid there and is kept;
* null or absent optional fields are kept and not warned about; a record derived
  from the mutated item may write an absent optional field as null or leave it out;
* a number becomes the text Python prints for it (``5``, ``1.5``); an answer of
  another type becomes ``as_text`` below (today's ``json.dumps`` form, with spaces);
* a survey whose ``id`` arrives as a number is kept under its text (``"42"``); the
  tap then asks for that survey's responses, which the API answers 404: none;
* surveys' ``created_time``/``updated_time`` are compared as instants (the rule
  asks for the normalised text only for responses and answers);
* a response or survey the page does not list (dropped from ``results``) is simply
  not there: no record, no warning; an empty or absent ``next_cursor`` ends the list;
* a position named in a warning (no usable id) may count from 0 or from 1.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import re
import typing as t
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STREAMS = ("surveys", "survey_questions", "survey_responses", "survey_answers")
KEYS = {
    "surveys": ("id",),
    "survey_questions": ("survey_id", "id"),
    "survey_responses": ("id",),
    "survey_answers": ("response_id", "position"),
}
NORMALISED = "%Y-%m-%dT%H:%M:%S.%f+00:00"

_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))")


def load_schemas() -> dict[str, dict]:
    return {name: json.loads((ROOT / "schemas" / f"{name}.json").read_text()) for name in STREAMS}


SCHEMAS = load_schemas()


def rfc3339_instant(value: object) -> dt.datetime | None:
    """The instant of an RFC 3339 date-time (section 5.6, upper- or lower-case T/Z), else None.

    Stricter than ISO 8601 on purpose: no date alone, no missing offset, no basic
    format, no space. Leap seconds are not produced by the generator.
    """
    if not isinstance(value, str):
        return None
    return _rfc3339_instant(value)


@functools.lru_cache(maxsize=65536)  # the same timestamps recur in every case
def _rfc3339_instant(value: str) -> dt.datetime | None:
    m = _RFC3339.fullmatch(value)
    if not m:
        return None
    if m.group(9) is not None and (int(m.group(9)) > 23 or int(m.group(10)) > 59):
        return None
    try:
        return dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00")).astimezone(dt.timezone.utc)
    except ValueError:  # 2024-02-30, 25:00, ...
        return None


def normalise(value: str) -> str:
    instant = rfc3339_instant(value)
    assert instant is not None, value
    return instant.strftime(NORMALISED)


def as_text(value: object) -> str | None:
    """An answer as text, exactly as today's tap writes it (tap_hotjar/streams.py ``as_text``):
    numbers as Python prints them, booleans true/false, arrays and objects as
    ``json.dumps(value, ensure_ascii=False)`` (default separators)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def usable_id(value: object) -> str | None:
    """An id as the key it becomes, or None when it cannot be one (B2)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


# ------------------------------------------------------------------ B1 / B3


@dataclasses.dataclass(frozen=True)
class Issue:
    """A warning the tap owes: ``kind`` skip or null; ``needles`` it must name."""

    kind: str
    stream: str
    needles: tuple[str, ...]  # ids, each as it appears in the record
    field: str  # the field's name (last key of its path)
    position: int | None = None  # on the page / in the list, when there is no usable id
    path: str = ""

    def describe(self) -> str:
        where = f" position {self.position}" if self.position is not None else ""
        return f"{self.kind} {self.stream} {'/'.join(self.needles)}{where} field {self.path or self.field}"


class _NotNullable(Exception):
    """The value is not allowed and this schema node cannot be null: the parent gives way."""


def _types(schema: dict) -> list[str]:
    kind = schema.get("type", [])
    return [kind] if isinstance(kind, str) else list(kind)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _path_text(path: tuple) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def _last_key(path: tuple) -> str:
    return next((step for step in reversed(path) if isinstance(step, str)), "")


class Conformer:
    """Conform one record's values to its stream's schema, collecting the nulls (B3)."""

    def __init__(self, stream: str, ids: tuple[str, ...]) -> None:
        self.stream = stream
        self.ids = ids
        self.issues: list[Issue] = []

    def record(self, item: dict, schema: dict, *, skip: tuple[str, ...] = ()) -> dict:
        """The schema's top-level properties of `item` conformed; undocumented ones dropped."""
        out = {}
        for key, sub in schema["properties"].items():
            if key in item and key not in skip:
                try:
                    out[key] = self.value(item[key], sub, (key,))
                except _NotNullable:
                    raise AssertionError(f"{self.stream}.{key} cannot be null and is not checked first") from None
        return out

    def value(self, value: object, schema: dict, path: tuple) -> object:
        types = _types(schema)
        if self.stream == "survey_responses" and len(path) == 3 and path[0] == "answers" and path[2] == "answer":
            return as_text(value)  # B1: an answer of any type is text
        kind = _json_type(value)
        if kind == "null":
            if "null" in types:
                return None
            raise _NotNullable
        allowed = kind in types or (kind == "integer" and "number" in types)
        if allowed and kind in ("integer", "number") and "maximum" in schema and value > schema["maximum"]:  # type: ignore[operator]
            allowed = False
        if allowed and schema.get("format") == "date-time" and rfc3339_instant(value) is None:
            allowed = False
        if allowed and kind == "object":
            return self._object(t.cast("dict", value), schema, path)
        if allowed and kind == "array":
            return self._array(t.cast("list", value), schema, path)
        if allowed:
            return value
        # B1: a number where the reference says string (a plain string, not a date-time).
        text_only = "string" in types and not {"integer", "number"} & set(types) and "format" not in schema
        if kind in ("integer", "number") and text_only:
            return str(value)
        return self._drop(schema, path)

    def _object(self, value: dict, schema: dict, path: tuple) -> object:
        props = schema.get("properties", {})
        out = {}
        for key, item in value.items():
            if key not in props:
                out[key] = item  # undocumented, nested: kept as it came
                continue
            try:
                out[key] = self.value(item, props[key], (*path, key))
            except _NotNullable:
                return self._drop(schema, path)
        return out

    def _array(self, value: list, schema: dict, path: tuple) -> object:
        items = schema.get("items", {})
        out = []
        for index, item in enumerate(value):
            try:
                out.append(self.value(item, items, (*path, index)))
            except _NotNullable:
                return self._drop(schema, path)
        return out

    def _drop(self, schema: dict, path: tuple) -> None:
        if "null" not in _types(schema):
            raise _NotNullable
        self.issues.append(Issue("null", self.stream, self.ids, _last_key(path), path=_path_text(path)))
        return None


# ------------------------------------------------------------------ records


@dataclasses.dataclass
class ResponseOutcome:
    record: dict | None
    answers: list[dict]
    issues: list[Issue]


def conform_response(
    item: dict, site_id: int, survey_id: str, position: int, question_types: dict[str, str | None]
) -> ResponseOutcome:
    """A served response (an object) as survey_responses + survey_answers records, or skipped."""
    rid = usable_id(item.get("id"))
    named = (survey_id, rid) if rid is not None else (survey_id,)
    at = None if rid is not None else position

    def skip(field: str) -> ResponseOutcome:
        return ResponseOutcome(None, [], [Issue("skip", "survey_responses", named, field, at, field)])

    if rid is None:
        return skip("id")
    created = item.get("created_time")
    if rfc3339_instant(created) is None:
        return skip("created_time")
    answers = item.get("answers")
    if answers is not None and (not isinstance(answers, list) or not all(isinstance(a, dict) for a in answers)):
        return skip("answers")
    c = Conformer("survey_responses", named)
    record = c.record(item, SCHEMAS["survey_responses"], skip=("id", "created_time"))
    record.update(id=rid, created_time=normalise(t.cast("str", created)), site_id=site_id, survey_id=survey_id)
    rows = []
    for index, answer in enumerate(record.get("answers") or []):
        question_id = answer.get("question_id")
        rows.append(
            {
                "site_id": site_id,
                "survey_id": survey_id,
                "response_id": rid,
                "position": index,
                "question_id": question_id,
                "question_type": question_types.get(question_id) if question_id else None,
                "answer": answer.get("answer"),
                "comment": answer.get("comment"),
                "sentiment": answer.get("sentiment"),
                "tags": answer.get("tags"),
                "created_time": record["created_time"],
            }
        )
    return ResponseOutcome(record, rows, c.issues)


@dataclasses.dataclass
class SurveyOutcome:
    record: dict | None
    questions: list[dict]
    question_types: dict[str, str | None]
    issues: list[Issue]


def conform_survey(item: dict, site_id: int, position: int) -> SurveyOutcome:
    sid = usable_id(item.get("id"))
    if sid is None:
        return SurveyOutcome(None, [], {}, [Issue("skip", "surveys", (str(site_id),), "id", position, "id")])
    issues: list[Issue] = []
    c = Conformer("surveys", (sid,))
    record = c.record(item, SCHEMAS["surveys"], skip=("id",))
    record.update(id=sid, site_id=site_id)
    issues += c.issues
    questions = item.get("questions")
    rows: list[dict] = []
    types: dict[str, str | None] = {}
    if isinstance(questions, list):
        for index, question in enumerate(questions):
            qid = usable_id(question.get("id")) if isinstance(question, dict) else None
            if qid is None:
                field = "id" if isinstance(question, dict) else "questions"
                issues.append(Issue("skip", "survey_questions", (sid,), field, index, f"questions[{index}]"))
                continue
            qc = Conformer("survey_questions", (sid, qid))
            row = qc.record(t.cast("dict", question), SCHEMAS["survey_questions"], skip=("id",))
            row.update(id=qid, site_id=site_id, survey_id=sid, position=index)
            issues += qc.issues
            rows.append(row)
            types[qid] = row.get("type")
    return SurveyOutcome(record, rows, types, issues)


# ------------------------------------------------------------------ a whole run


def page_problem(body: str, sent_cursor: str | None) -> str | None:
    """What makes a served list page unusable as a whole (rule A), or None.

    Returns the field to name: "results", "results[3]", "next_cursor", or "" for a
    body that is not a JSON object at all.
    """
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(doc, dict):
        return ""
    results = doc.get("results")
    if not isinstance(results, list):
        return "results"
    for index, item in enumerate(results):
        if not isinstance(item, dict):
            return f"results[{index}]"
    cursor = doc.get("next_cursor")
    if cursor is not None and not isinstance(cursor, str):
        return "next_cursor"
    if sent_cursor is not None and cursor == sent_cursor:
        return "next_cursor"  # the same cursor again: a loop
    return None


@dataclasses.dataclass
class Served:
    """What the API served: per site, the survey list, and per survey id its response pages."""

    surveys: dict[int, list[dict]]
    pages: dict[tuple[int, str], list[list[dict]]]

    @classmethod
    def from_truth(cls, truth: dict, page_size: int) -> Served:
        surveys = {}
        pages = {}
        for site, data in truth["sites"].items():
            surveys[int(site)] = data["surveys"]
            for survey_id, responses in data["responses"].items():
                pages[(int(site), survey_id)] = [
                    responses[i : i + page_size] for i in range(0, len(responses), page_size)
                ] or [[]]
        return cls(surveys, pages)


@dataclasses.dataclass
class Expected:
    records: dict[str, dict[tuple, dict]]
    bookmarks: dict[tuple[int, str], str]  # (site, survey) -> newest normalised created_time emitted
    issues: list[Issue]
    # Each response's answers count, for the "answers come from answers only" check.
    answer_counts: dict[str, int]


def key_of(stream: str, record: dict) -> tuple:
    return tuple(record.get(k) for k in KEYS[stream])


@dataclasses.dataclass
class _Block:
    """What one listed survey contributes: its records, bookmark, issues."""

    records: dict[str, dict[tuple, dict]]
    bookmark: tuple[tuple[int, str], str] | None
    issues: list[Issue]
    counts: dict[str, int]


def _survey_block(site_id: int, position: int, item: dict, served: Served) -> _Block:
    records: dict[str, dict[tuple, dict]] = {name: {} for name in STREAMS}
    survey = conform_survey(item, site_id, position)
    issues = list(survey.issues)
    counts: dict[str, int] = {}
    newest = ""
    if survey.record is None:
        return _Block(records, None, issues, counts)
    records["surveys"][key_of("surveys", survey.record)] = survey.record
    for row in survey.questions:
        records["survey_questions"][key_of("survey_questions", row)] = row
    # The tap asks for the responses of the id it read; another id is a 404.
    for page in served.pages.get((site_id, survey.record["id"]), []):
        for index, response in enumerate(page):
            outcome = conform_response(response, site_id, survey.record["id"], index, survey.question_types)
            issues += outcome.issues
            if outcome.record is None:
                continue
            records["survey_responses"][key_of("survey_responses", outcome.record)] = outcome.record
            counts[outcome.record["id"]] = len(outcome.answers)
            for row in outcome.answers:
                records["survey_answers"][key_of("survey_answers", row)] = row
            newest = max(newest, outcome.record["created_time"])
    bookmark = ((site_id, survey.record["id"]), newest) if newest else None
    return _Block(records, bookmark, issues, counts)


class Oracle:
    """`expect` for many variants of one ground truth: surveys served as in the truth,
    with the same pages, reuse the truth's result (most of a case's work)."""

    def __init__(self, truth: Served) -> None:
        self.truth = truth
        self._blocks = {
            (site_id, position): _survey_block(site_id, position, item, truth)
            for site_id, items in truth.surveys.items()
            for position, item in enumerate(items)
        }

    def expect(self, served: Served) -> Expected:
        records: dict[str, dict[tuple, dict]] = {name: {} for name in STREAMS}
        bookmarks: dict[tuple[int, str], str] = {}
        issues: list[Issue] = []
        counts: dict[str, int] = {}
        for site_id, items in served.surveys.items():
            for position, item in enumerate(items):
                block = self._blocks.get((site_id, position))
                same = (
                    block is not None
                    and position < len(self.truth.surveys[site_id])
                    and _same(item, self.truth.surveys[site_id][position])
                    and _same(
                        served.pages.get((site_id, item.get("id"))), self.truth.pages.get((site_id, item.get("id")))
                    )
                )
                if not same:
                    block = _survey_block(site_id, position, item, served)
                assert block is not None
                for name in STREAMS:
                    records[name].update(block.records[name])
                if block.bookmark is not None:
                    bookmarks[block.bookmark[0]] = block.bookmark[1]
                issues += block.issues
                counts.update(block.counts)
        return Expected(records, bookmarks, issues, counts)


def _same(a: object, b: object) -> bool:
    """Equal as JSON: Python's == takes 1 for true and 1.0 for 1, which the API's types tell apart."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def expect(served: Served) -> Expected:
    """What the tap must emit for what the API served (see the module docstring)."""
    return Oracle(served).expect(served)
