"""What the report shows, read from the analytics marts (never from the raw tables).

Three marts feed it: `hotjar__nps` and `hotjar__ratings` (one row per survey, question
and ISO week, counts and scores as dbt computed them) and `hotjar__answers` (responses
per survey and week: a response counts once, in the week of its UTC `created_time`).
Everything here is plain Python data; `charts` and `page` only draw and print it, so
the numbers in a chart and in the table beside it are the same objects.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import typing as t

from tap_hotjar.warehouse.connection import Connection, WarehouseError

NPS_MART = "hotjar__nps"
RATINGS_MART = "hotjar__ratings"
ANSWERS_MART = "hotjar__answers"
MARTS = (NPS_MART, RATINGS_MART, ANSWERS_MART)
WEEK = dt.timedelta(days=7)
TABLE_WEEKS = 4
# z for a two-sided 95% interval.
Z95 = 1.959964


def nps_interval(promoters: int, detractors: int, responses: int) -> tuple[float, float]:
    """An approximate 95% interval for NPS: the adjusted Wald interval (Rocks, "Interval
    estimation for the net promoter score", The American Statistician 70(4), 2016): add 3/4
    of a promoter and of a detractor and 3 answers, then the variance of a difference of
    two proportions. Unlike the plain Wald interval it is not zero-wide for one answer."""
    n = responses + 3
    p = (promoters + 0.75) / n
    d = (detractors + 0.75) / n
    spread = Z95 * math.sqrt(max(p + d - (p - d) ** 2, 0.0) / n)
    return max(-100.0, 100 * (p - d - spread)), min(100.0, 100 * (p - d + spread))


def share_interval(successes: int, trials: int) -> tuple[float, float]:
    """The Wilson score 95% interval of a proportion (the top-box share), in [0, 1]."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    spread = Z95 * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return max(0.0, centre - spread), min(1.0, centre + spread)


@dataclasses.dataclass(frozen=True)
class NpsWeek:
    """One row of hotjar__nps."""

    week: dt.date
    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: float

    @property
    def interval(self) -> tuple[float, float]:
        return nps_interval(self.promoters, self.detractors, self.responses)


@dataclasses.dataclass(frozen=True)
class RatingWeek:
    """One row of hotjar__ratings."""

    week: dt.date
    responses: int
    avg_score: float
    top_box_responses: int
    top_box_share: float

    @property
    def interval(self) -> tuple[float, float]:
        return share_interval(self.top_box_responses, self.responses)


@dataclasses.dataclass
class Question:
    """An nps or rating question of a survey, with its weeks (oldest first)."""

    id: str
    text: str
    type: str
    scale_max: int | None = None  # ratings: 5 or 7
    position: int = 0
    nps_weeks: list[NpsWeek] = dataclasses.field(default_factory=list)
    rating_weeks: list[RatingWeek] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Survey:
    """A survey with responses: its responses per week (every week from its first to its
    last, 0 where none) and its nps and rating questions, in the survey's order."""

    id: str
    name: str
    site_id: int | None
    responses: dict[dt.date, int] = dataclasses.field(default_factory=dict)
    questions: list[Question] = dataclasses.field(default_factory=list)

    @property
    def nps_questions(self) -> list[Question]:
        return [q for q in self.questions if q.type == "nps"]

    @property
    def rating_questions(self) -> list[Question]:
        return [q for q in self.questions if q.type != "nps"]

    @property
    def last_weeks(self) -> list[dt.date]:
        """The survey's last TABLE_WEEKS ISO weeks (Mondays), up to its latest response."""
        last = max(self.responses)
        return [last - WEEK * back for back in range(TABLE_WEEKS - 1, -1, -1)]


@dataclasses.dataclass
class ReportData:
    warehouse: str  # safe to print: no password
    schema: str
    surveys: list[Survey]

    @property
    def latest_week(self) -> dt.date | None:
        return max((max(s.responses) for s in self.surveys), default=None)


def quote_identifier(name: str) -> str:
    """A schema name as a quoted SQL identifier (the same in DuckDB and PostgreSQL)."""
    return '"' + name.replace('"', '""') + '"'


def check_marts(connection: Connection, schema: str) -> None:
    """A WarehouseError naming what is missing, before any query fails on it."""
    present = {
        name
        for (name,) in connection.rows(
            "select table_name from information_schema.tables where table_schema = ?", [schema]
        )
    }
    if not present:
        raise WarehouseError(
            f"no schema {schema!r} with the analytics models in {connection.url.display}; "
            "build them first (dbt build: meltano invoke dbt-duckdb:build or dbt-postgres:build), "
            "or name their schema with --schema"
        )
    missing = [mart for mart in MARTS if mart not in present]
    if missing:
        raise WarehouseError(
            f"schema {schema!r} in {connection.url.display} has no {', '.join(missing)}; "
            "build the models first (dbt build: meltano invoke dbt-duckdb:build or dbt-postgres:build)"
        )


def _week(value: t.Any) -> dt.date:
    # PostgreSQL and DuckDB return a date; a driver may hand back a datetime.
    return value.date() if isinstance(value, dt.datetime) else value


def read_report_data(connection: Connection, schema: str) -> ReportData:
    """Every survey with responses in the marts, ordered by site and name."""
    check_marts(connection, schema)
    s = quote_identifier(schema)
    surveys: dict[str, Survey] = {}
    # S608: the only name spliced into these statements is the quoted schema.
    responses_sql = f"""
        select survey_id, min(site_id), min(survey_name), week_start, count(distinct response_id)
        from (
            select survey_id, site_id, survey_name, response_id,
                   cast(date_trunc('week', created_time) as date) as week_start
            from {s}.{ANSWERS_MART}
        ) as answers
        group by survey_id, week_start
    """  # noqa: S608
    for survey_id, site_id, name, week, count in connection.rows(responses_sql):
        survey = surveys.setdefault(survey_id, Survey(survey_id, name or survey_id, site_id))
        survey.responses[_week(week)] = int(count)

    # Questions in the order the survey asks them.
    positions_sql = f"""
        select survey_id, question_id, min(question_position) from {s}.{ANSWERS_MART}
        where question_type in ('nps', 'rating-1-5', 'rating-1-7', 'reaction')
        group by survey_id, question_id
    """  # noqa: S608
    positions = {(survey_id, question_id): pos for survey_id, question_id, pos in connection.rows(positions_sql)}
    questions: dict[tuple[str, str], Question] = {}

    def question(survey_id: str, question_id: str, text: str | None, qtype: str) -> Question | None:
        key = (survey_id, question_id)
        if key not in questions:
            if survey_id not in surveys:  # a mart row without answers behind it: not dbt's output
                return None
            questions[key] = Question(question_id, text or question_id, qtype, position=positions.get(key) or 0)
            surveys[survey_id].questions.append(questions[key])
        return questions[key]

    nps_sql = f"""
        select survey_id, question_id, question_text, week_start, responses, promoters, passives, detractors, nps
        from {s}.{NPS_MART} order by survey_id, question_id, week_start
    """  # noqa: S608
    for survey_id, question_id, text, week, n, promoters, passives, detractors, nps in connection.rows(nps_sql):
        q = question(survey_id, question_id, text, "nps")
        if q is not None:
            q.nps_weeks.append(NpsWeek(_week(week), int(n), int(promoters), int(passives), int(detractors), float(nps)))

    ratings_sql = f"""
        select survey_id, question_id, question_text, question_type, scale_max, week_start, responses,
               avg_score, top_box_responses, top_box_share
        from {s}.{RATINGS_MART} order by survey_id, question_id, week_start
    """  # noqa: S608
    for row in connection.rows(ratings_sql):
        survey_id, question_id, text, qtype, scale_max, week, n, avg, top_box, share = row
        q = question(survey_id, question_id, text, qtype)
        if q is not None:
            q.scale_max = int(scale_max)
            q.rating_weeks.append(RatingWeek(_week(week), int(n), float(avg), int(top_box), float(share)))

    for survey in surveys.values():
        # Every week from the first to the last: a week without responses is a 0, not a gap.
        week, last = min(survey.responses), max(survey.responses)
        while week < last:
            survey.responses.setdefault(week, 0)
            week += WEEK
        survey.responses = dict(sorted(survey.responses.items()))
        survey.questions.sort(key=lambda q: (q.position, q.id))
    ordered = sorted(surveys.values(), key=lambda sv: (sv.site_id or 0, sv.name, sv.id))
    return ReportData(warehouse=connection.url.display, schema=schema, surveys=ordered)
