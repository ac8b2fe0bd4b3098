"""The analytics marts, computed in Python from the simulator's own data.

Independent of the warehouse and of the SQL in transform/: it reads what the
simulator serves (`HotjarSimulator.surveys()` / `responses()`) and applies the
definitions of the analytics issue: NPS buckets 9-10 / 7-8 / 0-6, top box = the
scale's two highest values, ISO weeks of the UTC submission time, the identity
attribute's value as the user id, the latest value of each attribute.

Every mart is a dict from its key to a tuple of comparable values; numbers that
SQL computes by division are rounded to 9 places on both sides (DuckDB divides
in DOUBLE, PostgreSQL in numeric).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import typing as t
from dataclasses import dataclass, field
from fractions import Fraction

if t.TYPE_CHECKING:
    from hotjar_simulator import HotjarSimulator

SCALES = {"nps": (0, 10), "rating-1-5": (1, 5), "rating-1-7": (1, 7), "reaction": (1, 5)}
RATING_TYPES = ("rating-1-5", "rating-1-7", "reaction")
# "A number": digits with at most one decimal point, no sign or exponent.
_NUMBER = re.compile(r"(?=.*[0-9])[0-9]*\.?[0-9]*")


def rounded(value: object) -> float | None:
    return None if value is None else round(float(value), 9)  # type: ignore[arg-type]


def as_text(value: object) -> str | None:
    """A JSON value as text: strings as they are, others as their JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def score(question_type: str | None, answer: str | None) -> Fraction | None:
    if question_type not in SCALES or answer is None:
        return None
    text = answer.strip()
    if not 1 <= len(text) <= 12 or not _NUMBER.fullmatch(text):
        return None
    return Fraction(text)


def utc(created_time: str) -> dt.datetime:
    instant = dt.datetime.fromisoformat(created_time.replace("Z", "+00:00"))
    return instant.astimezone(dt.timezone.utc).replace(tzinfo=None)


def week_start(created: dt.datetime) -> dt.date:
    return created.date() - dt.timedelta(days=created.weekday())


@dataclass
class Marts:
    """The five marts, keyed like their tables."""

    answers: dict[tuple, tuple] = field(default_factory=dict)
    nps: dict[tuple, tuple] = field(default_factory=dict)
    ratings: dict[tuple, tuple] = field(default_factory=dict)
    response_attributes: dict[tuple, str | None] = field(default_factory=dict)
    respondents: dict[str, tuple] = field(default_factory=dict)

    def as_dict(self) -> dict[str, dict]:
        return {
            "hotjar__answers": self.answers,
            "hotjar__nps": self.nps,
            "hotjar__ratings": self.ratings,
            "hotjar__response_attributes": self.response_attributes,
            "hotjar__respondents": self.respondents,
        }


def compute_marts(
    sim: HotjarSimulator,
    identity_attribute: str = "user_id",
    only: set[str] | None = None,
    empty_text_is_null: bool = False,
) -> Marts:
    """The marts for every response the simulator serves (or only those in `only`).

    empty_text_is_null: target-duckdb 0.8.0 loads through CSV files, which turns
    an empty answer ("") into NULL before any model sees it.
    """
    marts = Marts()
    weeks: dict[tuple, list[Fraction]] = {}
    rating_types: dict[tuple, str] = {}
    users: dict[str, list[tuple[dt.datetime, str, str, str | None, list[dict]]]] = {}
    for site_id in sim.site_ids:
        for survey in sim.surveys(site_id):
            types = {q["id"]: q["type"] for q in survey.get("questions") or []}
            for response in sim.responses(site_id, survey["id"]):
                if only is not None and response["id"] not in only:
                    continue
                created = utc(response["created_time"])
                attributes: dict[str, object] = {}
                for attribute in response.get("user_attributes") or []:
                    if attribute.get("name") is not None:
                        attributes[attribute["name"]] = attribute.get("value")
                for name, value in attributes.items():
                    marts.response_attributes[(response["id"], name)] = as_text(value)
                identity = as_text(attributes.get(identity_attribute))
                for position, answer in enumerate(response.get("answers") or []):
                    qtype = types.get(answer.get("question_id"))
                    text = as_text(answer.get("answer"))
                    if empty_text_is_null and text == "":
                        text = None
                    value = score(qtype, text)
                    marts.answers[(response["id"], position)] = (
                        survey["id"],
                        answer.get("question_id"),
                        qtype,
                        text,
                        rounded(value),
                        response.get("hotjar_user_id"),
                        identity,
                    )
                    low, high = SCALES.get(qtype, (None, None))  # type: ignore[arg-type]
                    if value is not None and low <= value <= high:
                        key = (survey["id"], answer["question_id"], week_start(created))
                        weeks.setdefault(key, []).append(value)
                        rating_types[key] = qtype  # type: ignore[assignment]
                if identity:
                    users.setdefault(identity, []).append(
                        (
                            created,
                            response["id"],
                            survey["id"],
                            response.get("hotjar_user_id"),
                            [a for a in response.get("user_attributes") or [] if a.get("name") is not None],
                        )
                    )

    for key, scores in weeks.items():
        n = len(scores)
        if rating_types[key] == "nps":
            promoters = sum(1 for s in scores if s >= 9)
            passives = sum(1 for s in scores if 7 <= s < 9)
            detractors = sum(1 for s in scores if s < 7)
            nps = Fraction(100 * (promoters - detractors), n)
            marts.nps[key] = (n, promoters, passives, detractors, rounded(nps))
        else:
            top = SCALES[rating_types[key]][1]
            top_box = sum(1 for s in scores if s >= top - 1)
            marts.ratings[key] = (
                rating_types[key],
                n,
                rounded(sum(scores) / n),
                top_box,
                rounded(Fraction(top_box, n)),
            )

    for user_id, seen in users.items():
        seen.sort(key=lambda r: (r[0], r[1]))
        latest: dict[str, object] = {}
        for *_, attribute_list in seen:  # oldest first: later values win
            for attribute in attribute_list:
                latest[attribute["name"]] = attribute.get("value")
        marts.respondents[user_id] = (
            sorted({r[3] for r in seen if r[3] is not None}),
            seen[0][0],
            seen[-1][0],
            len(seen),
            len({r[2] for r in seen}),
            latest,
        )
    return marts
