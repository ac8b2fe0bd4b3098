"""The floor: the least a Python program must do to write the tap's RECORD lines.

One token request, then for each site the survey list pages (limit=100,
with_questions=true), then for each survey the responses pages (limit=100) following
``next_cursor``: the same requests as a full sync of the tap. For the streams asked
for (``--streams``, default survey_responses) it writes the same records the tap
writes, one Singer RECORD line each with ``json.dumps``:

* surveys: the survey as listed, plus ``site_id``;
* survey_questions: each question plus ``site_id``, ``survey_id``, ``position``;
* survey_responses: the response plus ``site_id`` and ``survey_id``, ``created_time``
  in the tap's one UTC form, answers that are not text turned into text;
* survey_answers: one record per element of a response's answers, built as the tap
  builds it (``question_type`` from the survey's questions).

No schema, no state, no conformance, no logging: what is left is the cost of HTTP,
JSON and building the records, which no tap built on ``requests`` can go below. The
lines go through a 64 KiB buffer of its own whatever ``PYTHONUNBUFFERED`` says (with
it, ``sys.stdout`` would make a write system call for every record and every newline).
A full sync only (no state, no start_date). cpu_ratio.py checks that the records
are the tap's, stream by stream.

    python benchmarks/floor.py --config config.json [--streams all] > /dev/null

Prints one JSON summary line on stderr: requests made, records written, seconds.
``--rate-limit N`` (default 0: off) spaces requests so that at most N start in any
one second, for comparing with a tap that limits itself the same way.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import sys
import time
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from collections.abc import Iterator

STREAMS = ("surveys", "survey_questions", "survey_responses", "survey_answers")
UTC = datetime.timezone.utc


class _Limiter:
    """At most ``limit`` request starts in any one-second window (0: unlimited)."""

    def __init__(self, limit: float) -> None:
        self.limit = int(limit)
        self.sent: collections.deque[float] = collections.deque()

    def wait(self) -> None:
        if not self.limit:
            return
        while True:
            now = time.monotonic()
            while self.sent and now - self.sent[0] >= 1.0:
                self.sent.popleft()
            if len(self.sent) < self.limit:
                self.sent.append(now)
                return
            time.sleep(1.0 - (now - self.sent[0]))


def normalize_timestamp(value: str) -> str:
    """The tap's form (fixed width, UTC, microseconds); the stdlib parses the API's forms."""
    instant = datetime.datetime.fromisoformat(value.strip().upper().replace("Z", "+00:00"))
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def run(config: dict, out: object, rate_limit: float = 0.0, streams: tuple[str, ...] = ("survey_responses",)) -> dict:
    base = str(config.get("api_url", "https://api.hotjar.io")).rstrip("/")
    limit = int(config.get("page_size", 100))
    session = requests.Session()
    limiter = _Limiter(rate_limit)
    write = out.write  # type: ignore[attr-defined]
    # Compact and UTF-8, as the tap writes: the same bytes to write.
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    want_surveys = "surveys" in streams
    want_questions = "survey_questions" in streams
    want_responses = "survey_responses" in streams
    want_answers = "survey_answers" in streams
    written: collections.Counter[str] = collections.Counter()
    n_requests = 0
    t0 = time.perf_counter()

    def now() -> str:
        # One time_extracted per page: its records were extracted together.
        return datetime.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def emit(stream: str, record: dict, extracted: str) -> None:
        write(dumps({"type": "RECORD", "stream": stream, "record": record, "time_extracted": extracted}))
        write("\n")
        written[stream] += 1

    limiter.wait()
    token = session.post(
        f"{base}/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": config["client_id"],
            "client_secret": config["client_secret"],
        },
        timeout=60,
    )
    n_requests += 1
    token.raise_for_status()
    session.headers["Authorization"] = "Bearer " + token.json()["access_token"]

    def pages(url: str, params: dict) -> Iterator[list]:
        nonlocal n_requests
        cursor = None
        while True:
            if cursor is not None:
                params["cursor"] = cursor
            limiter.wait()
            resp = session.get(url, params=params, timeout=60)
            n_requests += 1
            resp.raise_for_status()
            body = json.loads(resp.content)
            yield body["results"]
            cursor = body.get("next_cursor")
            if not cursor:
                return

    # Every site's surveys first, then their responses: the tap's order of requests.
    surveys: list[tuple[int, str, dict]] = []
    for site_id in config["site_ids"]:
        url = f"{base}/v1/sites/{site_id}/surveys"
        for results in pages(url, {"limit": limit, "with_questions": "true"}):
            extracted = now()
            for survey in results:
                survey_id = survey["id"]
                questions = survey.get("questions") or []
                types = {q["id"]: q.get("type") for q in questions if isinstance(q, dict) and q.get("id")}
                surveys.append((site_id, survey_id, types))
                if want_surveys:
                    emit("surveys", {**survey, "site_id": site_id}, extracted)
                if want_questions:
                    for position, question in enumerate(questions):
                        record = {**question, "site_id": site_id, "survey_id": survey_id, "position": position}
                        emit("survey_questions", record, extracted)

    if want_responses or want_answers:
        for site_id, survey_id, types in surveys:
            url = f"{base}/v1/sites/{site_id}/surveys/{survey_id}/responses"
            for results in pages(url, {"limit": limit}):
                extracted = now()
                for response in results:
                    created = normalize_timestamp(response["created_time"])
                    response["created_time"] = created
                    response["site_id"] = site_id
                    response["survey_id"] = survey_id
                    answers = response.get("answers") or ()
                    for answer in answers:
                        if isinstance(answer, dict) and not isinstance(answer.get("answer"), (str, type(None))):
                            answer["answer"] = as_text(answer["answer"])
                    if want_answers:
                        for position, answer in enumerate(answers):
                            a = answer if isinstance(answer, dict) else {"answer": answer}
                            question_id = a.get("question_id")
                            record = {
                                "site_id": site_id,
                                "survey_id": survey_id,
                                "response_id": response["id"],
                                "position": position,
                                "question_id": question_id,
                                "question_type": types.get(question_id) if question_id else None,
                                "answer": a.get("answer"),
                                "comment": a.get("comment"),
                                "sentiment": a.get("sentiment"),
                                "tags": a.get("tags"),
                                "created_time": created,
                            }
                            emit("survey_answers", record, extracted)
                    if want_responses:
                        emit("survey_responses", response, extracted)
    out.flush()  # type: ignore[attr-defined]
    return {
        "requests": n_requests,
        "surveys": len(surveys),
        "responses": written["survey_responses"],
        "records": dict(written),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--config", required=True, help="a tap-hotjar config file (client_id, client_secret, site_ids, api_url)"
    )
    p.add_argument("--rate-limit", type=float, default=0.0, help="max requests started per second (default 0: off)")
    p.add_argument(
        "--streams",
        default="survey_responses",
        help="'all', or stream names separated by commas (default survey_responses)",
    )
    a = p.parse_args(argv)
    streams = STREAMS if a.streams == "all" else tuple(s for s in a.streams.replace("+", ",").split(",") if s)
    unknown = set(streams) - set(STREAMS)
    if unknown:
        p.error(f"unknown stream(s): {', '.join(sorted(unknown))}")
    with open(a.config, encoding="utf-8") as f:
        config = json.load(f)
    # UTF-8 whatever the locale (the tap writes UTF-8), through a buffer of its own
    # whatever PYTHONUNBUFFERED says: with it, sys.stdout writes each string at once
    # (a system call per record and one per newline), which is no floor.
    out = open(sys.stdout.fileno(), "w", encoding="utf-8", buffering=1 << 16, closefd=False)  # noqa: SIM115
    try:
        summary = run(config, out, a.rate_limit, streams)
    finally:
        out.close()
    print(json.dumps(summary), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
