"""Ground truth: what the tap must emit, derived from the simulator's data."""

from __future__ import annotations

import math
import typing as t

import pendulum

if t.TYPE_CHECKING:
    from hotjar_simulator import HotjarSimulator


def instant(value: str) -> pendulum.DateTime:
    return pendulum.parse(value).in_timezone("UTC")  # type: ignore[union-attr]


def _same_times(record: dict, keys: tuple[str, ...]) -> dict:
    """Date-times compared as instants: the tap normalises their text."""
    return {k: (instant(v) if k in keys and isinstance(v, str) else v) for k, v in record.items()}


def expected_records(sim: HotjarSimulator) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {
        "surveys": [],
        "survey_questions": [],
        "survey_responses": [],
        "survey_answers": [],
    }
    for site_id in sim.site_ids:
        for survey in sim.surveys(site_id):
            out["surveys"].append({**survey, "site_id": site_id})
            types = {q["id"]: q["type"] for q in survey.get("questions") or []}
            for position, q in enumerate(survey.get("questions") or []):
                out["survey_questions"].append(
                    {**q, "site_id": site_id, "survey_id": survey["id"], "position": position}
                )
            for response in sim.responses(site_id, survey["id"]):
                out["survey_responses"].append({**response, "site_id": site_id, "survey_id": survey["id"]})
                for position, a in enumerate(response.get("answers") or []):
                    out["survey_answers"].append(
                        {
                            "site_id": site_id,
                            "survey_id": survey["id"],
                            "response_id": response["id"],
                            "position": position,
                            "question_id": a.get("question_id"),
                            "question_type": types.get(a.get("question_id")),
                            "answer": a.get("answer"),
                            "comment": a.get("comment"),
                            "sentiment": a.get("sentiment"),
                            "tags": a.get("tags"),
                            "created_time": response["created_time"],
                        }
                    )
    return out


KEYS = {
    "surveys": ("id",),
    "survey_questions": ("survey_id", "id"),
    "survey_responses": ("id",),
    "survey_answers": ("response_id", "position"),
}
TIMES = ("created_time", "updated_time")


def keyed(stream: str, records: list[dict]) -> dict[tuple, dict]:
    return {tuple(r[k] for k in KEYS[stream]): _same_times(r, TIMES) for r in records}


def pages_needed(created_times: list[str], page_size: int, stop: str | None) -> int:
    """Pages a correct tap requests for one survey (newest-first list)."""
    if not created_times:
        return 1
    if stop is not None:
        stop_at = instant(stop)
        for index, value in enumerate(created_times):
            if instant(value) < stop_at:
                return index // page_size + 1
    return math.ceil(len(created_times) / page_size)
