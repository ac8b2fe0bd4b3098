"""Malformed API data (issue #14): hundreds of seeded one-field mutations, the tap run as a user runs it.

Each case breaks one field of one response, answer, survey, question or list page
as the simulator serves it (drop it, null it, change its JSON type, make it huge,
nest it wrongly, or a value chosen to be wrong: "1024x768" for window_size, a date
without a time), runs the real `tap-hotjar` command line against it, and checks
what came out against the rule of issue #14 (tests/malformed_oracle.py is the rule
written as code, with the reading taken where it leaves room):

A. a list page that is broken as a whole (not an object, `results` not a list, an
   element that is not an object, a `next_cursor` of the wrong type or the cursor
   just sent) is retried and then fails the run with one clear line naming the
   site, the survey and the field; a loop fails at once;
B. anything else is decided per field: conformed (numbers to text, timestamps
   normalised), the record skipped (no usable id or created_time, answers that
   are not a list of objects), the value nulled, or kept; one WARNING each, and
   a summary line counting them;
C. every other record is emitted, equal to the ground truth; bookmarks are the
   newest created_time emitted per survey;
D. every record is valid against the SCHEMA message before it, keys are present
   and unique, answer records match their response's answers.

Speed: the tap's entry point is imported once and forked per case (tests/
fork_runner.py), against two simulators side by side (one per core; same data,
rate limit off so that cases do not slow each other down), with the tap's retry
waits cut to milliseconds (`_fast_retries`).

Replay a failing case: its message gives the seed and the case number, e.g.
`MALFORMED_SEED=1414 scripts/test.sh tests/test_malformed.py -k c0042`.
More cases: `MALFORMED_CASES=1000`; thousands: `scripts/test.sh -m slow -k thousands`
(MALFORMED_SLOW_CASES, default 3000). MALFORMED_REPORT=path writes every outcome as JSON.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import os
import random
import re
import select
import time
import traceback
import typing as t
from pathlib import Path

import msgspec
import pytest
from jsonschema import Draft7Validator, FormatChecker

import tap_hotjar.cli
import tap_hotjar.user_lookup.cli
from hotjar_simulator import HotjarSimulator
from tap_hotjar.http import policy
from tests import fork_runner
from tests.malformed_oracle import (
    KEYS,
    NORMALISED,
    STREAMS,
    Expected,
    Issue,
    Oracle,
    Served,
    page_problem,
    rfc3339_instant,
)

SEED = int(os.environ.get("MALFORMED_SEED", "1414"))
CI_CASES = int(os.environ.get("MALFORMED_CASES", "300"))
SLOW_CASES = int(os.environ.get("MALFORMED_SLOW_CASES", "3000"))
PAGE = 10
# 2 sites x 2 surveys x 3 pages of 10 responses: first, middle and last pages exist
# for every survey, and a run takes ~15 requests.
DATASET: dict[str, t.Any] = {
    "seed": 14,
    "sites": 2,
    "surveys_per_site": 2,
    "responses_per_survey": (21, 30),
    "empty_sites": 0,
    "empty_surveys": 0,
    "rate_limit": 0,
}
LANES = 2
CASE_TIMEOUT = 60.0
ERROR_PREFIX = "tap-hotjar: error:"
EXCEPTION_NAME = re.compile(r"\b[A-Z]\w*(Error|Exception)\b")
LOG_LINE = re.compile(r"^\S+ \S+ \| (\w+)\s*\| \S+\s*\| (.*)$")


def _fast_retries() -> None:
    """Cut the tap's retry waits to milliseconds (in the forked child, before main).

    The one place that knows the tap's retry knobs: the one retry policy that the
    tap's requests, its token request and hotjar-user-lookup all read.
    """
    from tap_hotjar.http import policy  # noqa: PLC0415 - in the child only

    policy.DEFAULT = dataclasses.replace(policy.DEFAULT, backoff_base=0.001, max_backoff=0.01)


# ---------------------------------------------------------------- the cases


@dataclasses.dataclass(frozen=True)
class Case:
    seed: int
    number: int
    mutation: dict  # set_mutation's keyword arguments
    where: str  # the target in words, for messages

    @property
    def ident(self) -> str:
        m = self.mutation
        path = ".".join(str(p) for p in m.get("path", ())) or "-"
        op = m["op"] + (f"-{m['to']}" if m.get("to") else "")
        if m["op"] == "set":
            op += "-" + re.sub(r"\W+", "_", json.dumps(m.get("value")))[:16]
        kind = m["target"] + (f"-p{m['page']}" if "page" in m else "")
        return f"c{self.number:04d}-{kind}-{path}-{op}" + ("-transient" if m.get("transient") else "")

    def describe(self) -> str:
        m = {k: v for k, v in self.mutation.items() if k not in ("site_id", "survey_id", "response_id")}
        return f"case {self.number} (MALFORMED_SEED={self.seed}): {self.where}: {json.dumps(m, ensure_ascii=False)}"


@functools.cache
def truth() -> dict:
    """The dataset's ground truth (the same for every simulator built from DATASET)."""
    return HotjarSimulator(**DATASET).ground_truth()


@functools.cache
def oracle() -> Oracle:
    return Oracle(Served.from_truth(truth(), PAGE))


@functools.cache
def base_expected() -> Expected:
    return oracle().expect(Served.from_truth(truth(), PAGE))


_WRONG_TEXT = (5, 1.5, True, {}, [], "")
_WRONG_BOOL = ("yes", 1, "true")
_BAD_TIMES = (
    "not a date",
    "2024-02-30T10:00:00Z",  # no such day
    "2024-05-01",  # a date, no time
    "2024-05-01T12:00:00",  # no offset
    "20240501T120000Z",  # ISO 8601 basic format, not RFC 3339
    "",
    1714564800,  # epoch seconds
)
SPECIAL: dict[str, tuple] = {
    "id": ("", 7),
    "created_time": _BAD_TIMES,
    "updated_time": _BAD_TIMES,
    "window_size": ("1024x768", {}, {"width": 1024}),
    "width": ("1024", 1024.5, 2**63, 2**63 - 1, -1),
    "height": ("768", 2**63),
    "is_complete": _WRONG_BOOL,
    "is_enabled": _WRONG_BOOL,
    "is_required": _WRONG_BOOL,
    "allow_comment": _WRONG_BOOL,
    "sentiment_analysis_enabled": _WRONG_BOOL,
    "user_attributes": ("x", {"name": "plan", "value": "pro"}, [], [None]),
    "value": ({"a": 1}, [1, 2], 2**70, "2024-01-01T00:00:00Z", 3.25, False, None, ""),
    "name": (5, None, True),
    "tags": ("x", [5], [{"name": 5}], None, []),
    "answer": (5, 1.5, True, False, None, [1, 2], {"a": "b"}, "", "10"),
    "question_id": ({"x": 1}, 5, None, ""),
    "answers": ("nope", [], None, [None], [{}], {"answer": "x"}),
    "questions": ("x", [], None, [5], {"id": "q"}),
    "choices": ("x", [], None, {}, [5]),
    "labels": ("x", None, {}, [1]),
}
_ADDED = {  # undocumented fields: dropped at a record's top level, kept nested
    "response": [(("language",), "en"), (("window_size", "device_pixel_ratio"), 2.0)],
    "answer": [(("answer_kind",), "text")],
    "survey": [(("targeting",), {"devices": ["mobile"]})],
    "question": [(("randomize",), True), (("labels", "mid_label"), "meh")],
}


def _json_type(value: object) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), "null"
    )


def _respellings(value: str) -> list[str]:
    """The same instant in other RFC 3339 forms: another offset, lower-case t and z."""
    instant = rfc3339_instant(value)
    if instant is None:
        return []
    import datetime as dt  # noqa: PLC0415

    shifted = instant.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30)))
    frac = f".{instant.microsecond:06d}" if instant.microsecond else ""
    return [
        shifted.strftime("%Y-%m-%dT%H:%M:%S") + frac + "+05:30",
        value.replace("T", "t").replace("Z", "z"),
    ]


def _value_op(rng: random.Random, value: object, field: str, *, is_id: bool) -> dict:
    """An operation on one existing value."""
    ops: list[tuple[int, dict]] = [(2, {"op": "drop"}), (2, {"op": "null"}), (1, {"op": "wrap_list"})]
    ops.append((1, {"op": "wrap_object"}))
    current = _json_type(value)
    for to in ("string", "integer", "number", "boolean", "array", "object"):
        if to != current and not (to == "number" and current == "integer"):
            ops.append((1, {"op": "retype", "to": to}))
    hugeable = (
        (isinstance(value, str) and value)
        or (isinstance(value, list) and value)
        or (isinstance(value, int) and not isinstance(value, bool))
    )
    # Not ids (a 300 KB survey id would be a 300 KB URL), nor the questions list: it
    # is cycled, and 10,000 questions with 3 distinct ids is a key question of its own.
    if hugeable and not is_id and field != "questions":
        ops.append((2, {"op": "huge"}))
    specials = list(SPECIAL.get(field, _WRONG_TEXT if isinstance(value, str) else ()))
    if field == "created_time" and isinstance(value, str):
        specials += _respellings(value)
    for special in specials:
        ops.append((max(1, 12 // len(specials)), {"op": "set", "value": special}))
    weights, choices = zip(*ops, strict=True)
    return dict(rng.choices(choices, weights=weights)[0])


def _paths(item: object, prefix: tuple = ()) -> list[tuple]:
    """Every path into an item's values (objects and lists, all depths)."""
    out = []
    pairs = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
    for key, value in pairs:
        out.append((*prefix, key))
        out += _paths(value, (*prefix, key))
    return out


def _pick_path(rng: random.Random, item: dict, kind: str) -> tuple:
    # Answers and questions have targets of their own.
    nested = {"response": "answers", "survey": "questions"}.get(kind)
    paths = [p for p in _paths(item) if not (p[0] == nested and len(p) > 1)]
    # Favour the fields with a rule of their own; keep every path possible.
    weights = [4 if p[-1] in ("id", "created_time", "answers", "questions", "window_size") else 1 for p in paths]
    return rng.choices(paths, weights=weights)[0]


def _value_at(item: object, path: tuple) -> object:
    for step in path:
        item = item[step]  # type: ignore[index]
    return item


def _item_case(rng: random.Random, kind: str, item: dict, base: dict) -> dict:
    """A mutation inside one response / answer / survey / question (`base`: how to name it)."""
    roll = rng.random()
    if roll < 0.08:
        path, value = rng.choice(_ADDED[kind])
        if len(path) == 1 or isinstance(item.get(path[0]), dict):
            return {**base, "path": list(path), "op": "set", "value": value}
    if roll < 0.16 and kind in ("response", "survey"):
        # The item itself: gone from the page, an empty object, wrapped, or not an object.
        op = rng.choice(
            [
                {"op": "drop"},
                {"op": "set", "value": {}},
                {"op": "wrap_object"},
                {"op": "null", "transient": rng.random() < 0.7},
                {"op": "retype", "to": rng.choice(["string", "integer", "array"]), "transient": rng.random() < 0.7},
            ]
        )
        return {**base, "path": [], **op}
    if roll < 0.2 and kind in ("answer", "question"):
        return {**base, "path": [], **_value_op(rng, item, "", is_id=True)}
    path = _pick_path(rng, item, kind)
    field = next((p for p in reversed(path) if isinstance(p, str)), "")
    op = _value_op(rng, _value_at(item, path), field, is_id=path[-1] == "id")
    return {**base, "path": list(path), **op}


def _page_case(
    rng: random.Random, choice: int, site: int, survey: str | None, page: int, size: int, last: bool
) -> dict:
    """Choice 0: `results`; 1: an element of it; 2: `next_cursor`; 3: the body; 4: a cut; 5: a loop."""
    base: dict[str, t.Any] = {"target": "page", "site_id": site, "page": page}
    if survey is not None:
        base["survey_id"] = survey
    transient = rng.random() < 0.7
    if choice == 0:
        op = rng.choice(
            [{"op": "drop"}, {"op": "null"}] + [{"op": "retype", "to": to} for to in ("string", "integer", "object")]
        )
        return {**base, "path": ["results"], **op, "transient": transient}
    if choice == 1:
        op = rng.choice([{"op": "null"}] + [{"op": "retype", "to": to} for to in ("string", "integer", "array")])
        return {**base, "path": ["results", rng.randrange(size)], **op, "transient": transient}
    if choice == 2:
        ops = [{"op": "retype", "to": to} for to in ("integer", "boolean", "array", "object")]
        if not last:  # the end of the list, told three ways: allowed
            ops += [{"op": "set", "value": ""}, {"op": "null"}, {"op": "drop"}]
        return {**base, "path": ["next_cursor"], **rng.choice(ops), "transient": transient}
    if choice == 3:
        op = rng.choice(
            [
                {"op": "retype", "to": "array"},
                {"op": "retype", "to": "string"},
                {"op": "null"},
                {"op": "drop"},
                {
                    "op": "reply",
                    "body": "<html><body><h1>502 Bad Gateway</h1></body></html>",
                    "headers": {"Content-Type": "text/html"},
                },
                {"op": "reply", "body": "OK"},
            ]
        )
        return (
            {**base, "path": [], **op, "transient": transient}
            if op["op"] != "reply"
            else {**base, **op, "transient": transient}
        )
    if choice == 4:
        return {**base, "op": "cut", "transient": True}  # the connection closes mid-page, once
    return {**base, "op": "echo_cursor"}  # a loop: next_cursor is the cursor just sent


# Each block of 50 cases: 20 responses, 9 answers, 6 surveys, 6 questions, 9 pages,
# interleaved; the page cases of a block go through every kind of broken page.
_SCHEDULE = ["response"] * 20 + ["answer"] * 9 + ["survey"] * 6 + ["question"] * 6 + ["page"] * 9
random.Random("malformed-schedule").shuffle(_SCHEDULE)
_PAGE_SLOTS = [i for i, kind in enumerate(_SCHEDULE) if kind == "page"]
_PAGE_CHOICES = 6


def generate(seed: int, count: int) -> list[Case]:
    """`count` cases, each from its own Random(seed, number): case n is the same in any run."""
    sites = truth()["sites"]
    cases = []
    for number in range(count):
        rng = random.Random(f"malformed:{seed}:{number}")
        site_key = rng.choice(sorted(sites))
        site = int(site_key)
        surveys = sites[site_key]["surveys"]
        survey = rng.choice(surveys)
        responses = sites[site_key]["responses"][survey["id"]]
        pages = [responses[i : i + PAGE] for i in range(0, len(responses), PAGE)]
        page = rng.randrange(len(pages))  # first, middle or last
        block, slot = divmod(number, len(_SCHEDULE))
        kind = _SCHEDULE[slot]
        if kind == "response":
            response = rng.choice(pages[page])
            mutation = _item_case(rng, "response", response, {"target": "response", "response_id": response["id"]})
            where = f"response {response['id']} on page {page} of survey {survey['id']} of site {site}"
        elif kind == "answer":
            candidates = [r for p in pages for r in p if r["answers"]]
            response = rng.choice([r for r in pages[page] if r["answers"]] or candidates)
            index = rng.randrange(len(response["answers"]))
            mutation = _item_case(
                rng,
                "answer",
                response["answers"][index],
                {"target": "answer", "response_id": response["id"], "index": index},
            )
            where = f"answers[{index}] of response {response['id']} of survey {survey['id']} of site {site}"
        elif kind == "survey":
            mutation = _item_case(rng, "survey", survey, {"target": "survey", "survey_id": survey["id"]})
            where = f"survey {survey['id']} of site {site}"
        elif kind == "question":
            index = rng.randrange(len(survey["questions"]))
            mutation = _item_case(
                rng,
                "question",
                survey["questions"][index],
                {"target": "question", "survey_id": survey["id"], "index": index},
            )
            where = f"questions[{index}] of survey {survey['id']} of site {site}"
        else:
            choice = (_PAGE_SLOTS.index(slot) + block) % _PAGE_CHOICES
            if choice != 5 and rng.random() < 0.25:
                mutation = _page_case(rng, choice, site, None, 0, len(surveys), last=True)
                where = f"the survey list of site {site}"
            else:
                if choice == 5:
                    page = max(page, 1)  # a loop needs a cursor sent: not the first page
                last = page == len(pages) - 1
                mutation = _page_case(rng, choice, site, survey["id"], page, len(pages[page]), last=last)
                where = f"page {page} of the responses of survey {survey['id']} of site {site}"
        cases.append(Case(seed, number, mutation, where))
    return cases


# ---------------------------------------------------------------- running


@dataclasses.dataclass
class Lane:
    sim: HotjarSimulator
    config: Path


@dataclasses.dataclass
class Outcome:
    case: Case
    problems: list[tuple[str, str]]  # (code, detail)
    seconds: float
    returncode: int
    summary: str  # what the run did, in one line

    def message(self) -> str:
        codes = ", ".join(sorted({code for code, _ in self.problems}))
        lines = [f"{self.case.describe()}", f"  {len(self.problems)} problem(s): {codes}", f"  run: {self.summary}"]
        lines += [f"  [{code}] {detail}" for code, detail in self.problems]
        more = f" MALFORMED_CASES={self.case.number + 1}" if self.case.number >= CI_CASES else ""
        replay = f"scripts/test.sh tests/test_malformed.py -k c{self.case.number:04d}"
        lines.append(f"  replay: MALFORMED_SEED={self.case.seed}{more} {replay}")
        return "\n".join(lines)


def run_cases(cases: list[Case], workdir: Path, lanes: list[Lane]) -> dict[int, Outcome]:
    """Every case, each lane (simulator) running one forked tap at a time."""
    todo = collections.deque(cases)
    running: dict[int, tuple[Case, fork_runner.Child]] = {}
    outcomes: dict[int, Outcome] = {}
    while todo or running:
        for index, lane in enumerate(lanes):
            if index not in running and todo:
                case = todo.popleft()
                lane.sim.clear_mutation()
                lane.sim.reset_counts()
                lane.sim.set_mutation(**case.mutation)
                child = fork_runner.start(
                    tap_hotjar.cli.main,
                    ["--config", str(lane.config)],
                    workdir / f"c{case.number:04d}",
                    prog="tap-hotjar",
                    prepare=_fast_retries,
                    env_drop_prefix="TAP_HOTJAR_",
                    timeout=CASE_TIMEOUT,
                )
                running[index] = (case, child)
        ready, _, _ = select.select([child for _, child in running.values()], [], [], 1.0)
        now = time.monotonic()
        for index in [i for i, (_, child) in running.items() if child in ready or now > child.deadline]:
            case, child = running.pop(index)
            finished = child.finish()
            try:
                outcomes[case.number] = check(case, finished, lanes[index].sim)
            except Exception:  # noqa: BLE001 - a bug of this suite: say so in the case, go on
                crash = [("checker-crash", traceback.format_exc(limit=-3))]
                outcomes[case.number] = Outcome(case, crash, finished.seconds, finished.returncode, "")
            for name in ("stdout", "stderr"):
                (child.workdir / name).unlink(missing_ok=True)
            child.workdir.rmdir()
    return outcomes


def start_lanes(tmp: Path) -> list[Lane]:
    lanes = []
    for index in range(LANES):
        sim = HotjarSimulator(**DATASET).start()
        config = tmp / f"config-{index}.json"
        config.write_text(json.dumps(sim.config(page_size=PAGE)))
        lanes.append(Lane(sim, config))
    assert lanes[0].sim.ground_truth() == truth()
    return lanes


# ---------------------------------------------------------------- checks


@functools.cache
def _validator(schema_text: str) -> Draft7Validator:
    return Draft7Validator(json.loads(schema_text), format_checker=FormatChecker())


# Most records recur unchanged in every case: a record equal to one already found
# valid under the same schema is valid (a dict comparison instead of a validation).
_VALID: dict[tuple[str, str, tuple], dict] = {}


def _schema_errors(schema_text: str, stream: str, record: dict) -> list:
    slot = (schema_text, stream, _key(stream, record))
    if _VALID.get(slot) == record:
        return []
    errors = sorted(_validator(schema_text).iter_errors(record), key=lambda e: list(e.absolute_path))
    if not errors:
        _VALID[slot] = record
    return errors


def _decode(line: str) -> dict:
    try:
        return msgspec.json.decode(line)
    except msgspec.ValidationError:  # an integer beyond 64 bits: json takes any
        return json.loads(line)


def _message_of(line: str) -> tuple[str, str]:
    """(level, message) of a stderr line: singer-sdk's `time | LEVEL | logger | message`."""
    m = LOG_LINE.match(line)
    if m:
        return m.group(1), m.group(2)
    return ("WARNING" if re.search(r"\bWARNING\b", line) else ""), line


def _key(stream: str, record: dict) -> tuple:
    """A record's primary key, hashable whatever the tap put in it."""
    parts = (record.get(k) for k in KEYS[stream])
    return tuple(p if isinstance(p, (str, int, float, type(None))) else json.dumps(p) for p in parts)


def _without_times(record: dict) -> dict:
    out = {}
    for key, value in record.items():
        instant = rfc3339_instant(value) if key in ("created_time", "updated_time") else None
        out[key] = instant if instant is not None else value
    return out


def _no_nulls(value: object) -> object:
    """Absent and null alike, at any depth: a mutated record may write either."""
    if isinstance(value, dict):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_no_nulls(v) for v in value]
    return value


def _short(value: object, size: int = 300) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
    return text if len(text) <= size else text[: size - 20] + f"... ({len(text)} chars)"


def _issue_lines(issue: Issue, warnings: list[str]) -> list[str]:
    """The WARNING messages that name this issue: its ids, its field, its position if any."""
    found = []
    for message in warnings:
        if not all(needle in message for needle in issue.needles):
            continue
        rest = message
        for needle in sorted(issue.needles, key=len, reverse=True):
            rest = rest.replace(needle, " ")
        if issue.field and not re.search(rf"(?<![A-Za-z_]){re.escape(issue.field)}(?![A-Za-z_])", rest):
            continue
        if issue.position is not None and not re.search(
            rf"(?<![\w.-])({issue.position}|{issue.position + 1})(?![\w-])", rest
        ):
            continue
        found.append(message)
    return found


def expected_for(case: Case, log: list[dict]) -> tuple[Expected, dict | None]:
    """What the run must emit, and how it must fail (None: it must not), for what was served."""
    base = base_expected()
    m = case.mutation
    served = Served.from_truth(truth(), PAGE)
    if not log:
        return base, None  # (and the case fails as not-served)
    entry = log[0]
    if m["op"] == "cut":
        return base, None  # a connection closed once: retried
    problem = page_problem(entry["body"], entry["cursor"]) if entry["status"] == 200 else ""
    if problem is not None:
        loop = m["op"] == "echo_cursor"
        if m.get("transient") and not loop:
            return base, None  # retried, and then the page is fine
        failure = {"site_id": entry["site_id"], "survey_id": entry["survey_id"], "field": problem, "loop": loop}
        return base, failure
    doc = json.loads(entry["body"])
    site = entry["site_id"]
    if entry["route"] == "surveys_list":
        served.surveys[site] = doc["results"]
    else:
        pages = served.pages[(site, entry["survey_id"])]
        pages[entry["page"]] = doc["results"]
        if not doc.get("next_cursor"):
            del pages[entry["page"] + 1 :]  # the API said there is no more: later pages are not read
    return oracle().expect(served), None


def check(case: Case, run: fork_runner.Finished, sim: HotjarSimulator) -> Outcome:
    problems: list[tuple[str, str]] = []

    def problem(code: str, detail: str) -> None:
        problems.append((code, detail))

    mutations = sim.mutations()
    log = sim.mutation_log()
    requests_log = sim.requests_log
    stderr_lines = [line for line in run.stderr.splitlines() if line.strip()]
    last = stderr_lines[-1] if stderr_lines else ""
    summary = f"exit {run.returncode} in {run.seconds:.2f} s; last stderr line: {_short(last, 240)}"
    if run.timed_out:
        problem("timeout", f"killed after {CASE_TIMEOUT:.0f} s")
    if not mutations or mutations[0]["hits"] == 0:
        problem("not-served", "the mutation never reached the tap (the case or the simulator is wrong)")
    expected, failure = expected_for(case, log)

    # D: every line a Singer message; records valid against the SCHEMA before them.
    messages = []
    for number, line in enumerate(run.stdout.split("\n")):
        if not line.strip():
            continue
        try:
            messages.append(_decode(line))
        except (ValueError, msgspec.DecodeError):
            problem("stdout-not-json", f"stdout line {number + 1}: {_short(line, 200)}")
    schemas: dict[str, str] = {}
    records: dict[str, list[dict]] = collections.defaultdict(list)
    emitted_before: list[set] = []  # response ids emitted before each STATE
    states = []
    seen_responses: set = set()
    invalid = collections.Counter()
    for message in messages:
        kind = message.get("type")
        if kind == "SCHEMA":
            schemas[message["stream"]] = json.dumps(message["schema"], sort_keys=True)
        elif kind == "RECORD":
            stream, record = message["stream"], message["record"]
            records[stream].append(record)
            if stream == "survey_responses":
                seen_responses.add(str(record.get("id")))  # a wrong type is reported on its own
            if stream not in schemas:
                problem("record-before-schema", f"{stream} record before any SCHEMA message")
                continue
            errors = _schema_errors(schemas[stream], stream, record)
            if errors:
                invalid[stream] += 1
                if invalid[stream] <= 2:
                    e = errors[0]
                    where = ".".join(str(p) for p in e.absolute_path) or "(record)"
                    problem(
                        "schema-invalid",
                        f"{stream} {[record.get(k) for k in KEYS[stream]]} at {where}: {_short(e.message, 200)}",
                    )
        elif kind == "STATE":
            states.append(message["value"])
            emitted_before.append(set(seen_responses))
    for stream, n in invalid.items():
        if n > 2:
            problem("schema-invalid", f"{stream}: {n} invalid records in all")
    for stream in STREAMS:
        keys = collections.Counter()
        for record in records[stream]:
            key = _key(stream, record)
            if any(part is None for part in key):
                problem("null-key", f"{stream} record with key {key}: {_short(record, 200)}")
            else:
                keys[json.dumps(key)] += 1
        dupes = [k for k, n in keys.items() if n > 1]
        if dupes:
            problem("duplicate-key", f"{stream}: {len(dupes)} keys emitted twice, e.g. {dupes[0]}")
    answers_by_response = collections.Counter(_key("survey_answers", r)[0] for r in records["survey_answers"])
    # A run that fails stops inside a survey: the tap writes a survey's answers after a
    # batch of its responses (once per survey, or per 1,000 responses), so responses of
    # that survey may lack theirs. No STATE claims the survey (checked below): the next
    # run reads it again, answers included.
    stopped_in = failure["survey_id"] if failure is not None else None
    for response in records["survey_responses"]:
        if stopped_in is not None and response.get("survey_id") == stopped_in:
            continue
        given = response.get("answers")
        n = len(given) if isinstance(given, list) else 0
        rid = _key("survey_responses", response)[0]
        written = answers_by_response.get(rid, 0)
        if written != n:
            problem(
                "answers-mismatch", f"response {_short(rid, 80)} holds {n} answers, {written} survey_answers records"
            )
    orphans = set(answers_by_response) - {_key("survey_responses", r)[0] for r in records["survey_responses"]}
    if orphans:
        problem(
            "answers-orphan", f"survey_answers for responses never emitted: {_short(sorted(map(str, orphans))[:3])}"
        )
    if "Traceback" in run.stderr:
        problem("traceback", _short(run.stderr[run.stderr.index("Traceback") :], 400))

    # C: a STATE never claims a survey that was not read in full.
    claimed: set = set()
    for state, before in zip(states, emitted_before, strict=True):
        for part in state.get("bookmarks", {}).get("survey_responses", {}).get("partitions", []):
            if "replication_key_value" not in part:
                continue
            mark = (part["context"].get("site_id"), part["context"].get("survey_id"))
            if mark in claimed:
                continue  # said once per survey
            wanted = expected.bookmarks.get(mark)  # type: ignore[arg-type]
            missing = {
                r["id"] for r in expected.records["survey_responses"].values() if (r["site_id"], r["survey_id"]) == mark
            } - before
            if part["replication_key_value"] != wanted or missing:
                problem(
                    "state-claims-unread",
                    f"STATE bookmark {part['replication_key_value']} for {mark} "
                    f"(expected {wanted}, {len(missing)} of its responses not emitted before it)",
                )
                claimed.add(mark)

    if failure is not None:
        _check_failure(case, run, last, failure, requests_log, mutations, problem)
        _check_subset(records, expected, problem)
    else:
        _check_success(case, run, stderr_lines, records, states, expected, problem)
    return Outcome(case, problems, run.seconds, run.returncode, summary)


def _check_failure(
    case: Case,
    run: fork_runner.Finished,
    last: str,
    failure: dict,
    requests_log: list,
    mutations: list[dict],
    problem: t.Callable[[str, str], None],
) -> None:
    field = failure["field"]
    what = f"a list page whose {field or 'body'} is broken"
    if run.returncode != 1:
        problem("exit-code", f"{what} must fail the run with exit 1, got exit {run.returncode}")
    if not failure["loop"] and mutations and mutations[0]["hits"] < 2:
        problem("not-retried", "a broken page is retried like any bad answer before the run fails; asked for once")
    if failure["loop"]:
        # Each cursor of that survey asked for once: the loop was not retried.
        repeats = collections.Counter(
            e[3]["cursor"]
            for e in requests_log
            if e[2].endswith(f"/surveys/{failure['survey_id']}/responses") and e[3].get("cursor")
        )
        if any(n > 1 for n in repeats.values()):
            problem(
                "loop-retried",
                f"a repeated cursor must fail at once; a page was asked for {max(repeats.values())} times",
            )
    if not last.startswith(ERROR_PREFIX):
        problem("error-line", f"the last stderr line must start with {ERROR_PREFIX!r}: {_short(last, 240)}")
        return
    needles = [str(failure["site_id"])]
    if failure["survey_id"] is not None:
        needles.append(failure["survey_id"])
    if field:
        needles.append(field)
    for needle in needles:
        if needle not in last:
            problem("error-line", f"the error line does not name {needle!r}: {_short(last, 240)}")
    if EXCEPTION_NAME.search(last):
        problem("error-line", f"the error line names a Python exception ({EXCEPTION_NAME.search(last).group(0)})")


def _check_subset(records: dict[str, list[dict]], expected: Expected, problem: t.Callable[[str, str], None]) -> None:
    """Before a failure: whatever was written is right (a subset of what a clean run writes)."""
    for stream in STREAMS:
        wrong = 0
        for record in records[stream]:
            key = _key(stream, record)
            want = expected.records[stream].get(key)
            if want is None or _without_times(want) != _without_times(record):
                wrong += 1
                if wrong == 1:
                    problem("record-wrong", f"{stream} {key}: written {_short(record)}; expected {_short(want)}")
        if wrong > 1:
            problem("record-wrong", f"{stream}: {wrong} records not as a clean run writes them")


def _check_success(
    case: Case,
    run: fork_runner.Finished,
    stderr_lines: list[str],
    records: dict[str, list[dict]],
    states: list[dict],
    expected: Expected,
    problem: t.Callable[[str, str], None],
) -> None:
    issues = expected.issues
    if run.returncode != 0:
        reason = f"{issues[0].kind} ({issues[0].describe()})" if issues else "nothing (kept or conformed)"
        problem("exit-code", f"the rule says {reason}: exit 0 expected, got {run.returncode}")
    base = base_expected()
    for stream in STREAMS:
        got = {_key(stream, r): r for r in records[stream]}
        want = expected.records[stream]
        missing = [k for k in want if k not in got]
        extra = [k for k in got if k not in want]
        if missing:
            changed = [k for k in missing if base.records[stream].get(k) != want[k]]
            detail = f"{stream}: {len(missing)} of {len(want)} expected records not emitted"
            detail += f" ({len(changed)} of them from the mutated item)" if changed else " (none from the mutated item)"
            problem("record-lost", f"{detail}, e.g. {missing[0]}")
        if extra:
            problem(
                "record-unexpected",
                f"{stream}: {len(extra)} records the rule does not allow, e.g. {_short(got[extra[0]])}",
            )
        differs = 0
        for key in want.keys() & got.keys():
            lenient = base.records[stream].get(key) != want[key]
            a, b = _without_times(want[key]), _without_times(got[key])
            if lenient:
                a, b = _no_nulls(a), _no_nulls(b)  # type: ignore[assignment]
            if a != b:
                differs += 1
                if differs == 1:
                    fields = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                    problem(
                        "record-differs",
                        f"{stream} {key} differs in {fields}: "
                        f"expected {_short({k: want[key].get(k) for k in fields})}, "
                        f"emitted {_short({k: got[key].get(k) for k in fields})}",
                    )
        if differs > 1:
            problem("record-differs", f"{stream}: {differs} records differ in all")
        if stream in ("survey_responses", "survey_answers"):
            bad = [r.get("created_time") for r in records[stream] if not _normalised(r.get("created_time"))]
            if bad:
                problem("time-not-normalised", f"{stream}: created_time {_short(bad[0], 80)} is not {NORMALISED}")
    final = states[-1] if states else {}
    marks = {
        (p["context"].get("site_id"), p["context"].get("survey_id")): p["replication_key_value"]
        for p in final.get("bookmarks", {}).get("survey_responses", {}).get("partitions", [])
        if "replication_key_value" in p
    }
    if marks != expected.bookmarks:
        wrong = {
            f"{k[0]}/{k[1]}": (marks.get(k), expected.bookmarks.get(k))
            for k in marks.keys() | expected.bookmarks.keys()
            if marks.get(k) != expected.bookmarks.get(k)
        }
        problem("bookmark", f"site/survey: [written, expected = newest created_time emitted]: {_short(wrong, 400)}")
    _check_warnings(case, stderr_lines, issues, problem)


def _normalised(value: object) -> bool:
    return (
        isinstance(value, str)
        and rfc3339_instant(value) is not None
        and rfc3339_instant(value).strftime(NORMALISED) == value
    )  # type: ignore[union-attr]


def _check_warnings(
    case: Case, stderr_lines: list[str], issues: list[Issue], problem: t.Callable[[str, str], None]
) -> None:
    messages = [_message_of(line) for line in stderr_lines]
    warnings = [text for level, text in messages if level == "WARNING"]
    # One WARNING per record skipped or changed: a malformed question touches two, the
    # survey record (its `questions` nulled) and the question record (skipped).
    owed = len({(issue.stream, issue.needles, issue.position) for issue in issues})
    primary = sorted(issues, key=lambda i: i.kind != "skip")[0] if issues else None
    if primary is not None and not _issue_lines(primary, warnings):
        problem(
            "warning-missing",
            f"no WARNING line names {primary.describe()} (needles {list(primary.needles)}, field {primary.field!r}"
            + (f", position {primary.position}" if primary.position is not None else "")
            + ")",
        )
    matching = {w for issue in issues for w in _issue_lines(issue, warnings)}
    if len(matching) > owed:
        problem(
            "warning-repeated",
            f"{len(matching)} WARNING lines for {owed} record(s) changed or skipped: {_short(sorted(matching), 400)}",
        )
    summaries = [text for _, text in messages if "malformed" in text.lower()]
    page_retry = case.mutation["target"] == "page" or (case.mutation.get("transient") and not case.mutation.get("path"))
    if owed:
        if not summaries:
            problem(
                "summary-missing", "no summary line containing 'malformed' at the end of a run that skipped or nulled"
            )
        else:
            numbers = [int(n) for n in re.findall(r"\d+", summaries[-1])]
            if sum(numbers) != owed:
                problem(
                    "summary-count",
                    f"the summary's numbers add up to {sum(numbers)}, not {owed}: {_short(summaries[-1])}",
                )
    elif summaries and not page_retry:
        problem("summary-unexpected", f"nothing was skipped or nulled, yet: {_short(summaries[-1])}")


# ---------------------------------------------------------------- tests


CASES = generate(SEED, CI_CASES)


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Outcome]:
    """Run every selected case once, two at a time, and keep the outcomes for the test items."""
    assert "date-time" in FormatChecker().checkers, "install rfc3339-validator: date-time formats go unchecked"
    wanted = {
        item.callspec.params["case"].number
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_malformed_case" and hasattr(item, "callspec")
    }
    selected = [case for case in CASES if case.number in wanted]
    tmp = tmp_path_factory.mktemp("malformed")
    lanes = start_lanes(tmp)
    started = time.monotonic()
    try:
        result = run_cases(selected, tmp, lanes)
    finally:
        for lane in lanes:
            lane.sim.stop()
    elapsed = time.monotonic() - started
    print(report(list(result.values()), elapsed))  # shown with -s
    _save_report(result, elapsed)
    return result


def report(outcomes: list[Outcome], elapsed: float) -> str:
    """Pass/fail counts, failures grouped by problem and by what was mutated, and the cost."""
    failed = [o for o in outcomes if o.problems]
    lines = [
        f"malformed-data cases: {len(outcomes)}, passed {len(outcomes) - len(failed)}, failed {len(failed)}; "
        f"{elapsed:.1f} s wall, {sum(o.seconds for o in outcomes) / max(1, len(outcomes)):.3f} s per tap run, "
        f"{LANES} at a time",
    ]
    by_code = collections.Counter(code for o in failed for code in {c for c, _ in o.problems})
    lines.append("failing cases by problem: " + ", ".join(f"{c} {n}" for c, n in by_code.most_common()))
    by_kind = collections.Counter(_kind(o.case) for o in failed)
    lines.append("failing cases by mutation: " + ", ".join(f"{k} {n}" for k, n in by_kind.most_common()))
    return "\n".join(lines)


def _kind(case: Case) -> str:
    m = case.mutation
    field = next((str(p) for p in reversed(m.get("path", ())) if isinstance(p, str)), "(item)")
    return f"{m['target']}:{field}:{m['op']}"


def _save_report(result: dict[int, Outcome], elapsed: float) -> None:
    path = os.environ.get("MALFORMED_REPORT")
    if not path:
        return
    Path(path).write_text(
        json.dumps(
            {
                "elapsed": elapsed,
                "cases": [
                    {
                        "number": o.case.number,
                        "ident": o.case.ident,
                        "kind": _kind(o.case),
                        "mutation": o.case.mutation,
                        "where": o.case.where,
                        "seconds": o.seconds,
                        "returncode": o.returncode,
                        "problems": o.problems,
                        "run": o.summary,
                    }
                    for o in sorted(result.values(), key=lambda o: o.case.number)
                ],
            },
            indent=1,
            default=str,
        )
    )


@pytest.mark.parametrize("case", CASES, ids=[case.ident for case in CASES])
def test_malformed_case(outcomes: dict[int, Outcome], case: Case) -> None:
    outcome = outcomes[case.number]
    if outcome.problems:
        pytest.fail(outcome.message(), pytrace=False)


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_thousands_of_cases(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The long run: MALFORMED_SLOW_CASES cases (default 3000) from another seed, one report."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("the long run: scripts/test.sh tests/test_malformed.py -m slow")
    seed = SEED + 1_000_000
    cases = generate(seed, SLOW_CASES)
    lanes = start_lanes(tmp_path)
    started = time.monotonic()
    try:
        result = run_cases(cases, tmp_path, lanes)
    finally:
        for lane in lanes:
            lane.sim.stop()
    elapsed = time.monotonic() - started
    print(report(list(result.values()), elapsed))
    _save_report(result, elapsed)
    failed = [o for o in result.values() if o.problems]
    if failed:
        first = "\n\n".join(o.message() for o in sorted(failed, key=lambda o: o.case.number)[:5])
        pytest.fail(f"{report(list(result.values()), elapsed)}\n\nthe first failing cases:\n{first}", pytrace=False)


# ---------------------------------------------------------------- the suite's own footing


def test_the_oracle_reproduces_the_ground_truth_on_unmutated_data() -> None:
    """With nothing mutated, the rule's reference gives exactly what tests/expected.py
    derives from the ground truth (created_time normalised): it adds nothing of its own."""
    from tests.expected import expected_records, keyed  # noqa: PLC0415

    sim = HotjarSimulator(**DATASET)
    want = expected_records(sim)
    got = base_expected()
    assert not got.issues
    for stream in STREAMS:
        assert keyed(stream, list(got.records[stream].values())) == keyed(stream, want[stream]), stream
    assert all(_normalised(r["created_time"]) for r in got.records["survey_responses"].values())
    assert len(got.bookmarks) == 4


@pytest.mark.parametrize(
    ("path", "value", "field", "outcome"),
    [
        # The issue's own probes, and the rule's examples.
        (["answers"], "nope", "answers", "skip"),
        (["id"], None, "id", "skip"),
        (["created_time"], None, "created_time", "skip"),
        (["created_time"], 1714564800, "created_time", "skip"),
        (["created_time"], "2024-05-01", "created_time", "skip"),
        (["window_size"], "1024x768", "window_size", {"window_size": None}),
        (["window_size", "width"], "1024", "width", {"window_size": {"width": None}}),
        (["device"], {}, "device", {"device": None}),
        (["is_complete"], "yes", "is_complete", {"is_complete": None}),
        (["browser"], 5, None, {"browser": "5"}),
        (["os"], 1.5, None, {"os": "1.5"}),
        (["user_attributes"], "x", "user_attributes", {"user_attributes": None}),
        (["user_attributes"], {"name": "a", "value": 1}, "user_attributes", {"user_attributes": None}),
        (
            ["user_attributes"],
            [{"name": "n", "value": {"a": 1}}],
            "value",
            {"user_attributes": [{"name": "n", "value": None}]},
        ),
        (
            ["user_attributes"],
            [{"name": "n", "value": 2**64}],
            "value",
            {"user_attributes": [{"name": "n", "value": None}]},
        ),
        (
            ["user_attributes"],
            [{"name": "n", "value": 2**63 - 1}],
            None,
            {"user_attributes": [{"name": "n", "value": 2**63 - 1}]},
        ),
        (["user_attributes"], [None], "user_attributes", {"user_attributes": None}),
        (["answers"], [{"answer": 7, "tags": [5]}], "tags", {"answers": [{"answer": "7", "tags": None}]}),
        (["answers"], [{"answer": [1, 2], "tags": None}], None, {"answers": [{"answer": "[1, 2]", "tags": None}]}),
        (
            ["answers"],
            [{"answer": True, "question_id": {"x": 1}}],
            "question_id",
            {"answers": [{"answer": "true", "question_id": None}]},
        ),
        (["answers"], [{"answer": "x"}, None], "answers", "skip"),
        (["language"], "en", None, {}),  # undocumented at the top level: dropped
    ],
)
def test_the_oracle_follows_the_rule(path: list, value: object, field: str | None, outcome: object) -> None:
    from hotjar_simulator.mutation import apply_path  # noqa: PLC0415
    from tests.malformed_oracle import conform_response  # noqa: PLC0415

    site = next(iter(truth()["sites"]))
    survey = truth()["sites"][site]["surveys"][0]
    response = json.loads(json.dumps(truth()["sites"][site]["responses"][survey["id"]][0]))
    apply_path(response, path, lambda _: value)
    result = conform_response(response, int(site), survey["id"], 0, {})
    if outcome == "skip":
        assert result.record is None
        assert [(i.kind, i.field) for i in result.issues] == [("skip", field)]
        return
    assert result.record is not None
    assert [i.field for i in result.issues] == ([field] if field else [])
    assert "language" not in result.record
    for key, want in t.cast("dict", outcome).items():
        got = result.record[key]
        if isinstance(want, dict):
            got = {k: got[k] for k in want}
        if isinstance(want, list):
            got = [{k: g.get(k) for k in w} for g, w in zip(got, want, strict=True)]
        assert got == want
    if path == ["answers"]:
        assert len(result.answers) == len(value)  # type: ignore[arg-type]
        if field == "question_id":
            assert result.answers[0]["question_type"] is None


def _installed(config: Path, workdir: Path) -> fork_runner.Finished:
    import subprocess  # noqa: PLC0415

    from tests.conftest import TAP  # noqa: PLC0415

    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_HOTJAR_")}
    proc = subprocess.run(
        [TAP, "--config", str(config)], capture_output=True, text=True, timeout=120, cwd=workdir, env=env, check=False
    )
    return fork_runner.Finished(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


@pytest.mark.parametrize(("value", "expected"), [(5, "5"), (1.5, "1.5"), (["nps"], None), (True, None)])
def test_answers_carry_the_question_type_their_question_record_has(
    tmp_path: Path, value: object, expected: str | None
) -> None:
    """A question type the reference does not allow is conformed once, by one rule: the
    answers repeat the question record's value (found by the 3,000-case run: answers
    had null where the question said "5")."""
    with HotjarSimulator(**DATASET) as sim:
        site = sim.site_ids[0]
        # A survey with answers, and the position of a question they answer.
        survey = next(sid for sid in sim.survey_ids(site) if sim.responses(site, sid))
        answered = {a["question_id"] for r in sim.responses(site, survey) for a in r["answers"]}
        questions = next(s["questions"] for s in sim.surveys(site) if s["id"] == survey)
        index = next(i for i, q in enumerate(questions) if q["id"] in answered)
        sim.set_mutation(
            target="question", site_id=site, survey_id=survey, index=index, path=["type"], op="set", value=value
        )
        config = tmp_path / "config.json"
        config.write_text(json.dumps(sim.config(page_size=PAGE)))
        run = _installed(config, tmp_path)
        assert sim.mutations()[0]["hits"] >= 1
    assert run.returncode == 0, run.stderr[-2000:]
    records = collections.defaultdict(list)
    for line in filter(None, run.stdout.split("\n")):  # not splitlines: U+2028 can be in a value
        message = json.loads(line)
        if message["type"] == "RECORD":
            records[message["stream"]].append(message["record"])
    types = {(q["survey_id"], q["id"]): q["type"] for q in records["survey_questions"]}
    assert types[(survey, questions[index]["id"])] == expected
    answers = [
        a for a in records["survey_answers"] if (a["survey_id"], a["question_id"]) == (survey, questions[index]["id"])
    ]
    assert answers
    assert {a["question_type"] for a in answers} == {expected}
    assert all(a["question_type"] == types.get((a["survey_id"], a["question_id"])) for a in records["survey_answers"])


@pytest.mark.parametrize(
    "mutation",
    [
        None,
        {"path": ["window_size"], "op": "set", "value": "1024x768"},
        {"op": "echo_cursor"},
    ],
    ids=["clean", "record-level", "loop"],
)
def test_the_fork_runner_sees_what_the_installed_executable_shows(tmp_path: Path, mutation: dict | None) -> None:
    """The shortcut is faithful: exit status, records, final state and last stderr line
    are those of `tap-hotjar` started as a process (real retry waits: no case here retries)."""
    with HotjarSimulator(**DATASET) as sim:
        site = sim.site_ids[0]
        survey = sim.survey_ids(site)[0]
        config = tmp_path / "config.json"
        config.write_text(json.dumps(sim.config(page_size=PAGE)))
        runs = []
        for index, how in enumerate(("installed", "forked")):
            sim.clear_mutation()
            if mutation is not None and mutation["op"] == "echo_cursor":
                sim.set_mutation(target="page", site_id=site, survey_id=survey, page=1, **mutation)
            elif mutation is not None:
                response = sim.responses(site, survey)[0]["id"]
                sim.set_mutation(target="response", response_id=response, **mutation)
            workdir = tmp_path / str(index)
            workdir.mkdir()
            if how == "installed":
                runs.append(_installed(config, workdir))
            else:
                child = fork_runner.start(tap_hotjar.cli.main, ["--config", str(config)], workdir, prog="tap-hotjar")
                runs.append(child.finish())
            if mutation is not None:
                assert sim.mutations()[0]["hits"] >= 1
    installed, forked = runs

    def seen(run: fork_runner.Finished) -> tuple:
        messages = [json.loads(line) for line in run.stdout.split("\n") if line.strip()]
        records = collections.defaultdict(list)
        for m in messages:
            if m["type"] == "RECORD":
                records[m["stream"]].append(m["record"])
        states = [m["value"] for m in messages if m["type"] == "STATE"]
        last = [line for line in run.stderr.splitlines() if line.strip()][-1]
        if LOG_LINE.match(last):
            last = LOG_LINE.match(last).group(2)  # type: ignore[union-attr]
        last = re.sub(r'"pid":\d+', "", last)
        last = re.sub(r"\d+\.\d+ per second", "", last)  # the rate of the final progress line varies
        return run.returncode, dict(records), states[-1] if states else None, last

    assert seen(forked) == seen(installed)


# ---------------------------------------------------------------- hotjar-user-lookup


@dataclasses.dataclass(frozen=True)
class LookupCase:
    """Hotjar's answer to the first subject's request, and what it finally was."""

    name: str
    mutation: dict
    final: int | None  # the status the first subject ends with (None: no answer at all)
    tries: int  # requests for the first subject


_HTML = "<html><body><h1>Something went wrong</h1><p>nginx</p></body></html>"
_RETRIES = policy.DEFAULT.max_tries  # the one retry policy hotjar-user-lookup shares with the tap
LOOKUP_CASES = [
    # The first subject's request gets the odd answer once (the second gets the usual
    # 202), except "always": every answer is odd, the batch stops after the first.
    LookupCase("202-with-json-body", {"op": "reply", "status": 202, "body": '{"status":"queued"}'}, 202, 1),
    LookupCase("202-with-text-body", {"op": "reply", "status": 202, "body": "queued"}, 202, 1),
    LookupCase("200-json", {"op": "reply", "status": 200, "body": '{"ok":true}'}, 200, 1),
    LookupCase("201-empty", {"op": "reply", "status": 201}, 201, 1),
    LookupCase("204", {"op": "reply", "status": 204}, 204, 1),
    LookupCase("400-text", {"op": "reply", "status": 400, "body": "Bad Request\n"}, 400, 1),
    LookupCase(
        "400-html", {"op": "reply", "status": 400, "body": _HTML, "headers": {"Content-Type": "text/html"}}, 400, 1
    ),
    LookupCase(
        "500-html-once", {"op": "reply", "status": 500, "body": _HTML, "headers": {"Content-Type": "text/html"}}, 202, 2
    ),
    LookupCase(
        "503-html-always",
        {"op": "reply", "status": 503, "body": _HTML, "headers": {"Content-Type": "text/html"}, "transient": False},
        503,
        _RETRIES,
    ),
    LookupCase("302", {"op": "reply", "status": 302, "headers": {"Location": "https://example.invalid/login"}}, 302, 1),
    LookupCase("418", {"op": "reply", "status": 418, "body": "I'm a teapot"}, 418, 1),
    LookupCase("499", {"op": "reply", "status": 499}, 499, 1),
    LookupCase("cut-once", {"op": "cut"}, 202, 2),
    LookupCase("cut-always", {"op": "cut", "transient": False}, None, _RETRIES),
]


@pytest.fixture(scope="module")
def lookup_sim():
    with HotjarSimulator(seed=2, sites=1, surveys_per_site=1, responses_per_survey=1, rate_limit=0) as sim:
        yield sim


@pytest.mark.parametrize("case", LOOKUP_CASES, ids=[c.name for c in LOOKUP_CASES])
def test_user_lookup_with_malformed_answers(lookup_sim: HotjarSimulator, tmp_path: Path, case: LookupCase) -> None:
    """Two subjects; Hotjar's answer to the first is odd. A careful operator wants one
    clear line per subject (no Python exception names, no HTML dumped), "accepted"
    in the result log only for a 2xx, refusals not retried, and the batch stopped
    when the API cannot be reached."""
    sim = lookup_sim
    sim.clear_mutation()
    sim.reset_counts()
    sim.set_mutation(target="user_lookup", **{"transient": True, **case.mutation})
    config = tmp_path / "config.json"
    config.write_text(json.dumps(sim.config(organization_id=sim.organization_id)))
    subjects = tmp_path / "subjects.jsonl"
    subjects.write_text('{"email": "first@example.com"}\n{"email": "second@example.com"}\n')
    log = tmp_path / "results.jsonl"
    run = fork_runner.start(
        tap_hotjar.user_lookup.cli.main,
        ["--config", str(config), "--file", str(subjects), "--log", str(log)],
        tmp_path / "run",
        prog="hotjar-user-lookup",
        prepare=_fast_retries,
        env_drop_prefix="TAP_HOTJAR_",
    ).finish()
    output = run.stdout + run.stderr
    shown = f"\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    entries = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    first_ok = case.final is not None and 200 <= case.final < 300
    stopped = case.final is None or case.final >= 500
    problems = []
    if "Traceback" in output:
        problems.append("a traceback")
    names = sorted({m.group(0) for m in EXCEPTION_NAME.finditer(output)})
    if names:
        problems.append(f"Python exception names in the output: {names}")
    if re.search(r"<(html|body|h1|p)\b", output):
        problems.append("the HTML body is dumped into the output")
    want_code = 0 if first_ok else 1
    if run.returncode != want_code:
        problems.append(f"exit {run.returncode}, expected {want_code}")
    sent = 1 if stopped else 2
    if len(entries) != sent:
        problems.append(f"{len(entries)} result log entries, expected {sent} (one per subject sent)")
    if entries:
        first = entries[0]
        if (first.get("status") == "accepted") != first_ok:
            problems.append(f"result log status {first.get('status')!r} for a final HTTP {case.final}")
        if stopped and first.get("status") == "refused":
            # Hotjar refused nothing: it failed (5xx) or never answered (the request may
            # even have been processed). "refused" sends an operator to fix the subject.
            problems.append(
                f"result log status 'refused' for a subject Hotjar never refused "
                f"({'no answer' if case.final is None else f'HTTP {case.final} after every retry'})"
            )
        if first.get("http_status") != case.final:
            problems.append(f"result log http_status {first.get('http_status')!r}, expected {case.final}")
        lines = [line for line in run.stdout.splitlines() if first.get("source", "\0") in line]
        verdict = [line for line in lines if line.startswith(("accepted", "refused", "failed"))]
        if len(verdict) != 1:
            problems.append(f"{len(verdict)} result lines for the first subject, expected one: {verdict}")
        elif verdict[0].startswith("accepted") != first_ok:
            problems.append(f"the first subject's line says {verdict[0].split()[0]!r} for a final HTTP {case.final}")
        elif stopped and verdict[0].startswith("refused"):
            problems.append("the first subject's line says 'refused' though Hotjar never refused it")
        elif case.final is not None and str(case.final) not in verdict[0]:
            problems.append(f"the first subject's line does not name HTTP {case.final}: {verdict[0]!r}")
    if sent == 2 and len(entries) == 2 and entries[1].get("status") != "accepted":
        problems.append(f"the second subject (a normal 202) was logged {entries[1].get('status')!r}")
    tries = sim.counts()["user_lookup"] - (sent - 1)
    if tries != case.tries:
        problems.append(f"the first subject was sent {tries} times, expected {case.tries}")
    assert not problems, f"hotjar-user-lookup, first answer {case.name}:\n  " + "\n  ".join(problems) + shown
