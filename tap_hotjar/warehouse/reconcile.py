"""Applying a reconciliation run's evidence to the warehouse: what Hotjar no longer has leaves it.

A reconciliation run (tap-hotjar with `reconcile_evidence_path`) re-reads everything, and
the loader upserts every row it wrote, stamping `_sdc_extracted_at` with the time the tap
read it. So after the load, among the surveys the run read completely, a row whose key
was not stamped since the run started is one Hotjar no longer returns. Before trusting
that, the warehouse must hold exactly as many rows stamped by the run as the run wrote,
per site and per survey: a load that lost rows, never finished, or had rows filtered by a
stream map leaves those surveys alone, with a WARNING naming each.

Everything happens in the caller's one transaction, set-based: the evidence goes into
temporary tables in one statement each, the checks are one GROUP BY per table, and each
table is changed by one statement. What is removed:

- a survey (its site's listing, read completely, lacks it): in the raw tables the survey,
  its questions, responses and answers; in the models, at once, its rows (by `survey_id`)
  and those of its responses;
- a response of a survey read completely: the response and its answers; in the models,
  at once, its rows (by `response_id`) and the per-user rows of its user;
- an answer (its response, still there, has fewer answers now): the answer; the models
  at the next `dbt build`;
- a question of a survey listed completely: the question (answers given to it stay: their
  responses exist); the models at the next `dbt build`.

Raw rows are marked (`_sdc_deleted_at` = now) or, with `erase`, deleted. Responses
created before the run's `start_date` were not read, and are never touched.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing as t

from tap_hotjar.warehouse.removal import Removed, ResponseSet, TempTable, change_raw, remove_responses
from tap_hotjar.warehouse.tables import DELETED_AT, EXTRACTED_AT, Catalog, Layout, quote

if t.TYPE_CHECKING:
    from tap_hotjar.reconciliation import Evidence
    from tap_hotjar.warehouse.connection import Connection
    from tap_hotjar.warehouse.tables import Table


@dataclasses.dataclass
class Outcome:
    """What a reconciliation found and did."""

    sites_checked: int = 0
    surveys_checked: int = 0  # surveys whose responses were compared
    left_alone: list[str] = dataclasses.field(default_factory=list)  # one WARNING line each
    gone: dict[str, int] = dataclasses.field(default_factory=dict)  # raw table -> rows Hotjar no longer has
    removed: Removed = dataclasses.field(default_factory=Removed)


def _utc(value: datetime.datetime) -> datetime.datetime:
    """Naive UTC, as the loaders write timestamps (the session's time zone is UTC too)."""
    return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)


class Reconciliation:
    """One evidence file applied to one warehouse, inside the caller's transaction."""

    def __init__(self, conn: Connection, layout: Layout, evidence: Evidence) -> None:
        self.conn = conn
        self.evidence = evidence
        self.catalog = Catalog(conn, layout)
        c = self.catalog
        self.surveys = c.require_raw("surveys", "id", "site_id", EXTRACTED_AT, DELETED_AT)
        self.questions = c.require_raw("survey_questions", "survey_id", "id", EXTRACTED_AT, DELETED_AT)
        self.responses = c.require_raw("survey_responses", "id", "survey_id", "created_time", EXTRACTED_AT, DELETED_AT)
        self.answers = c.require_raw(
            "survey_answers", "response_id", "position", "survey_id", "created_time", EXTRACTED_AT, DELETED_AT
        )
        self.started = _utc(evidence.started_at)
        self.finished = _utc(evidence.finished_at)
        self.start_date = _utc(datetime.datetime.fromisoformat(evidence.start_date)) if evidence.start_date else None
        self.outcome = Outcome()

    # ------------------------------------------------------------------ checks

    def _stamped(self, table: Table, keys: str) -> str:
        """Distinct keys of a table stamped by this run, per survey or site (a subquery)."""
        return (
            f"select distinct {keys} from {table.sql} where {quote(EXTRACTED_AT)} >= ? and {quote(EXTRACTED_AT)} <= ?"
        )

    def check(self) -> tuple[TempTable, TempTable, TempTable]:
        """The sites and surveys whose rows may be compared: read completely, and loaded completely."""
        conn, ev, window = self.conn, self.evidence, [self.started, self.finished]
        # The rows stamped by the run are counted per site and survey of the evidence;
        # whether each count is what the run wrote is decided below.
        sites = TempTable(conn, {"site_id": "bigint"})
        sites.fill([(s.site_id,) for s in ev.sites])
        surveys = TempTable(conn, {"survey_id": "text"})
        surveys.fill([(s.survey_id,) for s in ev.surveys])
        loaded_sites = dict(
            conn.rows(
                f"select e.site_id, count(l.id) from {sites.sql} as e"
                f" left join ({self._stamped(self.surveys, 'site_id, id')}) as l on l.site_id = e.site_id"
                " group by e.site_id",
                window,
            )
        )
        counts: dict[str, dict[str, int]] = {}
        for name, table, keys in (
            ("questions", self.questions, "survey_id, id"),
            ("responses", self.responses, "survey_id, id"),
            ("answers", self.answers, "survey_id, response_id, position"),
        ):
            rows = conn.rows(
                f"select l.survey_id, count(*) from ({self._stamped(table, keys)}) as l"
                f" where l.survey_id in (select survey_id from {surveys.sql}) group by l.survey_id",
                window,
            )
            counts[name] = {str(survey_id): int(n) for survey_id, n in rows}

        ok_sites = TempTable(conn, {"site_id": "bigint"})
        ok_questions = TempTable(conn, {"survey_id": "text"})
        ok_responses = TempTable(conn, {"survey_id": "text"})
        warn = self.outcome.left_alone.append
        good_sites = []
        for site in ev.sites:
            loaded = int(loaded_sites.get(site.site_id, 0))
            if not site.complete:
                why = site.incomplete_because or "its listing was not read completely"
                warn(f"site {site.site_id}: {why}; its surveys are left as they are")
            elif loaded != site.surveys:
                warn(
                    f"site {site.site_id}: the warehouse holds {loaded} of the {site.surveys} surveys the run wrote "
                    "(the load did not finish, or a stream map filtered some); its surveys are left as they are"
                )
            else:
                good_sites.append((site.site_id,))
        good_questions, good_responses = [], []
        for s in ev.surveys:
            which = f"survey {s.survey_id} of site {s.site_id}"
            questions = counts["questions"].get(s.survey_id, 0)
            if s.questions_complete and questions == s.questions:
                good_questions.append((s.survey_id,))
            elif s.questions_complete:
                warn(
                    f"{which}: the warehouse holds {questions} of its {s.questions} questions the run wrote; "
                    "its questions are left as they are"
                )
            responses, answers = counts["responses"].get(s.survey_id, 0), counts["answers"].get(s.survey_id, 0)
            if not s.responses_complete:
                why = s.incomplete_because or "its responses were not read to the end"
                warn(f"{which}: {why}; its responses are left as they are")
            elif (responses, answers) != (s.responses, s.answers):
                warn(
                    f"{which}: the warehouse holds {responses} of the {s.responses} responses and {answers} of the "
                    f"{s.answers} answers the run read (the load did not finish, or a stream map filtered some); "
                    "its responses are left as they are"
                )
            else:
                good_responses.append((s.survey_id,))
        ok_sites.fill(good_sites)
        ok_questions.fill(good_questions)
        ok_responses.fill(good_responses)
        self.outcome.sites_checked = len(good_sites)
        self.outcome.surveys_checked = len(good_responses)
        sites.drop()
        surveys.drop()
        return ok_sites, ok_questions, ok_responses

    # ------------------------------------------------------------------ gone

    def _not_stamped(self, table: Table, alias: str, keys: tuple[str, ...]) -> str:
        """No copy of this row's key was stamped since the run started (one `?`: the start)."""
        same = " and ".join(f"f.{quote(k)} = {alias}.{quote(k)}" for k in keys)
        return f"not exists (select 1 from {table.sql} as f where {same} and f.{quote(EXTRACTED_AT)} >= ?)"

    def _read_by_the_run(self, alias: str) -> tuple[str, list[t.Any]]:
        """Only what the run read: responses created before its start_date were not."""
        if self.start_date is None:
            return "", []
        return f" and {alias}.created_time >= ?", [self.start_date]

    def apply(self, *, erase: bool, dry_run: bool, now: datetime.datetime) -> Outcome:
        conn, out = self.conn, self.outcome
        ok_sites, ok_questions, ok_responses = self.check()
        live = quote(DELETED_AT) + " is null"

        # Every set is computed first, from the tables as loaded; then each table changes once.
        gone_surveys = TempTable(conn, {"survey_id": "text"})
        conn.execute(
            f"insert into {gone_surveys.sql} select distinct s.id from {self.surveys.sql} as s"
            f" where s.{live} and s.site_id in (select site_id from {ok_sites.sql})"
            f" and {self._not_stamped(self.surveys, 's', ('id',))}",
            [self.started],
        )
        of_gone_survey = f"in (select survey_id from {gone_surveys.sql})"
        of_checked_survey = f"in (select survey_id from {ok_responses.sql})"

        gone_responses = ResponseSet(conn)
        since, since_params = self._read_by_the_run("r")
        conn.execute(
            f"insert into {gone_responses.sql} select distinct r.id from {self.responses.sql} as r"
            f" where r.{live} and (r.survey_id {of_gone_survey} or (r.survey_id {of_checked_survey}{since}"
            f" and {self._not_stamped(self.responses, 'r', ('id',))}))",
            [*since_params, self.started],
        )
        # Answers not of a gone response: those of a gone survey whose response row is
        # missing, and those whose response is still there with fewer answers now.
        gone_answers = TempTable(conn, {"response_id": "text", "position": "bigint"})
        since, since_params = self._read_by_the_run("a")
        conn.execute(
            f"insert into {gone_answers.sql} select distinct a.response_id, a.position from {self.answers.sql} as a"
            f" where a.{live} and a.response_id not in (select response_id from {gone_responses.sql})"
            f" and (a.survey_id {of_gone_survey} or (a.survey_id {of_checked_survey}{since}"
            f" and {self._not_stamped(self.answers, 'a', ('response_id', 'position'))}))",
            [*since_params, self.started],
        )
        gone_questions = TempTable(conn, {"survey_id": "text", "id": "text"})
        conn.execute(
            f"insert into {gone_questions.sql} select distinct q.survey_id, q.id from {self.questions.sql} as q"
            f" where q.{live} and (q.survey_id {of_gone_survey} or (q.survey_id in (select survey_id from"
            f" {ok_questions.sql}) and {self._not_stamped(self.questions, 'q', ('survey_id', 'id'))}))",
            [self.started],
        )
        answers_of_gone_responses = int(
            conn.value(
                f"select count(*) from {self.answers.sql} as a where a.{live}"
                f" and a.response_id in (select response_id from {gone_responses.sql})"
            )
        )
        out.gone = {
            "surveys": gone_surveys.count(),
            "survey_questions": gone_questions.count(),
            "survey_responses": gone_responses.count(),
            "survey_answers": answers_of_gone_responses + gone_answers.count(),
        }
        if not dry_run:
            out.removed = remove_responses(self.catalog, gone_responses, erase=erase, now=now)
            for table, keys, on in (
                (self.answers, gone_answers, None),
                (self.questions, gone_questions, None),
                (self.surveys, gone_surveys, {"survey_id": "id"}),
            ):
                n = change_raw(self.catalog, table, keys, erase=erase, now=now, on=on)
                name = f"{table.schema}.{table.name}"
                out.removed.raw[name] = out.removed.raw.get(name, 0) + n
            # A gone survey's rows in the models (its questions, its weekly NPS, ...) go at once too.
            for table in self.catalog.models():
                if table.has("survey_id"):
                    name = f"{table.schema}.{table.name}"
                    n = conn.change(f"delete from {table.sql} where cast(survey_id as text) {of_gone_survey}")
                    out.removed.models[name] = out.removed.models.get(name, 0) + n
        for temporary in (
            ok_sites,
            ok_questions,
            ok_responses,
            gone_surveys,
            gone_responses,
            gone_answers,
            gone_questions,
        ):
            temporary.drop()
        return out
