"""What the reconciliation tests share: deletions in Hotjar, ground truth, loads (fixtures: tests/conftest.py)."""

from __future__ import annotations

import typing as t

from tests.e2e_helpers import TABLES, ground_truth

if t.TYPE_CHECKING:
    from pathlib import Path

    from tests.test_reliability import FaultSimulator
    from tests.warehouses import Warehouse

PAGE = 20


def truth(sim: FaultSimulator) -> dict[str, set[tuple]]:
    """The raw tables' keys as Hotjar has them now."""
    g = ground_truth(sim)
    return {
        "surveys": {(s,) for s in g.survey_ids},
        "survey_questions": set(g.question_keys),
        "survey_responses": {(r,) for r in g.response_ids},
        "survey_answers": set(g.answer_keys),
    }


def minus(a: dict[str, set[tuple]], b: dict[str, set[tuple]]) -> dict[str, set[tuple]]:
    return {table: a[table] - b[table] for table in TABLES}


def nothing() -> dict[str, set[tuple]]:
    return {table: set() for table in TABLES}


def assert_nothing_changed(wh: Warehouse, evidence: Path, before: dict[str, set[tuple]], label: object) -> None:
    """After a reconciliation run that did not finish: it left no evidence, so the apply
    step refuses; nothing is marked deleted, and the raw tables were only ever added to."""
    assert not evidence.exists(), label
    applied = wh.reconcile(evidence)
    assert applied.returncode == 1 and "no reconciliation evidence" in applied.stderr, label
    assert wh.all_keys(deleted=True) == nothing(), label
    live = wh.all_keys()
    assert all(before[table] <= live[table] for table in TABLES), label


class Deletions(t.NamedTuple):
    site: int
    survey: str  # some of its responses deleted (first, middle and last page)
    gone_survey: str  # deleted whole, on the same site
    question: tuple[str, str]  # (survey, question) removed, answers to it given before
    deleted_responses: list[str]


def delete_in_hotjar(sim: FaultSimulator) -> Deletions:
    """What a team (or an erasure) does in Hotjar after the first load."""
    site = sim.site_ids[0]
    by_size = sorted(sim.survey_ids(site), key=lambda s: len(sim.responses(site, s)), reverse=True)
    survey, gone_survey = by_size[0], by_size[1]  # the largest spans three pages or more
    assert len(sim.responses(site, survey)) > PAGE * 2 and sim.responses(site, gone_survey)
    ids = [r["id"] for r in sim.responses(site, survey)]
    deleted = [ids[0], ids[len(ids) // 2], ids[-1]]  # newest (the bookmark's), middle, oldest
    assert sim.delete_responses(site, survey, deleted) == 3
    sim.delete_survey(site, gone_survey)
    other_site = sim.site_ids[1]
    q_survey = next(s for s in sim.survey_ids(other_site) if sim.responses(other_site, s))
    answered = {a["question_id"] for r in sim.responses(other_site, q_survey) for a in r["answers"]}
    listed = next(s for s in sim.surveys(other_site) if s["id"] == q_survey)["questions"]
    question = next(q["id"] for q in listed if q["id"] in answered)
    sim.delete_question(other_site, q_survey, question)
    sim.add_responses(other_site, q_survey, 4)  # new responses arrive meanwhile
    return Deletions(site, survey, gone_survey, (q_survey, question), deleted)


def first_load(wh: Warehouse, sim: FaultSimulator) -> tuple[dict, dict[str, set[tuple]]]:
    loaded = wh.load(sim.config(page_size=PAGE))
    assert loaded.ok, loaded.tap_stderr[-2000:] + loaded.target_stderr[-2000:]
    before = truth(sim)
    assert wh.all_keys() == before
    assert loaded.state is not None
    return loaded.state, before


def reconcile_config(sim: FaultSimulator, evidence: Path, **overrides: t.Any) -> dict:
    return sim.config(**{"page_size": PAGE, "reconcile_evidence_path": str(evidence), **overrides})
