"""Reconciliation's safety: a survey that cannot be read completely is left as it is.

Against real PostgreSQL and DuckDB (through the real loaders), with the simulator
breaking the reconciliation run on purpose. The rule checked everywhere: no row that
Hotjar still has is ever marked or removed. How each fault ends:

| fault | the run | that survey (or site) |
|---|---|---|
| a listed survey's responses answer 404 | finishes, WARNING naming it | left as it is, WARNING from hotjar-reconcile |
| a page of responses is short (fewer than `limit`, a next cursor) | finishes, WARNING naming it | left as it is |
| a page of the site's surveys is short | finishes, WARNING naming the site | no survey of the site judged gone |
| a page broken once | retried, finishes | reconciled |
| 403, 5xx or a broken page for good | fails with one line, writes no evidence | nothing anywhere changes |
"""

from __future__ import annotations

import json
import typing as t

from tests.e2e_helpers import TABLES
from tests.reconcile_helpers import (
    PAGE,
    assert_nothing_changed,
    delete_in_hotjar,
    minus,
    reconcile_config,
    truth,
)
from tests.test_reliability import FAST, FaultSimulator, error_reply, garbled_reply, patched_command

if t.TYPE_CHECKING:
    from pathlib import Path

    from tests.warehouses import Warehouse


def _not_found(sim: FaultSimulator, route: str, args: tuple) -> t.Any:
    return 404, json.dumps({"code": "not_found", "msg": "survey not found"}).encode(), {}


def _nothing_hotjar_has_is_marked(wh: Warehouse, now: dict[str, set[tuple]]) -> dict[str, set[tuple]]:
    marked = wh.all_keys(deleted=True)
    assert all(not (marked[table] & now[table]) for table in TABLES), marked
    return marked


def _delete_two_responses(sim: FaultSimulator, site: int, survey: str) -> set[tuple]:
    ids = [r["id"] for r in sim.responses(site, survey)]
    gone = [ids[1], ids[-2]]
    assert sim.delete_responses(site, survey, gone) == 2
    return {(r,) for r in gone}


def test_surveys_not_read_completely_are_left_as_they_are_and_the_rest_is_reconciled(
    wh: Warehouse, rsim: FaultSimulator, tmp_path: Path
):
    sim = rsim
    assert wh.load(sim.config(page_size=PAGE)).ok
    before = truth(sim)
    deletions = delete_in_hotjar(sim)
    site, answered_404 = deletions.site, deletions.survey
    # Two more surveys with responses deleted: one whose page will come short, one
    # whose page will come broken once.
    others = [
        (s, sv)
        for s in sim.site_ids
        for sv in sim.survey_ids(s)
        if sv not in {answered_404, deletions.question[0]} and len(sim.responses(s, sv)) > PAGE
    ]
    (short_site, short), (broken_site, broken) = others[0], others[1]
    kept = _delete_two_responses(sim, short_site, short)
    reconciled = _delete_two_responses(sim, broken_site, broken)
    after = truth(sim)

    sim.arm(survey_fault=(answered_404, _not_found))
    # One response left out of page 2, the cursor leading on past it: it looks deleted;
    # only a strict reading of `limit` tells that the page may have left it out.
    sim.set_mutation(target="page", site_id=short_site, survey_id=short, page=1, path=["results", 3], op="drop")
    sim.add_mutation(target="page", site_id=broken_site, survey_id=broken, page=1, path=["results"], op="null",
                     transient=True)  # fmt: skip
    evidence = tmp_path / "evidence.json"
    run = wh.load(reconcile_config(sim, evidence))
    assert run.ok, run.tap_stderr[-3000:]
    applied = wh.reconcile(evidence)
    assert applied.returncode == 0, applied.stderr
    marked = _nothing_hotjar_has_is_marked(wh, after)

    for survey, survey_site, why in (
        (answered_404, site, "answered 404"),
        (short, short_site, "fewer than asked for, yet named a next page"),
    ):
        named = f"survey {survey} of site {survey_site}: "
        assert any(named in line and why in line for line in run.tap_stderr.splitlines()), why
        assert any(line.startswith("WARNING: " + named) and why in line for line in applied.stdout.splitlines())
    live = wh.all_keys()
    assert {(r,) for r in deletions.deleted_responses} <= live["survey_responses"]
    assert kept <= live["survey_responses"]
    # Everything else was reconciled: the broken page was retried and read.
    assert reconciled <= marked["survey_responses"]
    assert (deletions.gone_survey,) in marked["surveys"]
    assert deletions.question in marked["survey_questions"]
    assert marked["survey_responses"] == minus(before, after)["survey_responses"] - kept - {
        (r,) for r in deletions.deleted_responses
    }


def test_a_short_page_of_surveys_keeps_every_survey_of_its_site(wh: Warehouse, tmp_path: Path):
    # Small surveys, two a page: the site's listing spans three pages.
    sim = FaultSimulator(seed=6, sites=1, surveys_per_site=5, responses_per_survey=(3, 8), empty_sites=0,
                         rate_limit=None).start()  # fmt: skip
    try:
        page_size = 2
        assert wh.load(sim.config(page_size=page_size)).ok
        site = sim.site_ids[0]
        surveys = [sv for sv in sim.survey_ids(site) if sim.responses(site, sv)]
        gone_survey, survey = surveys[0], surveys[1]
        gone_response = sim.responses(site, survey)[1]["id"]
        sim.delete_survey(site, gone_survey)
        sim.delete_responses(site, survey, [gone_response])
        after = truth(sim)
        assert len(sim.survey_ids(site)) > page_size  # the first page of its surveys has a next one
        sim.set_mutation(target="page", site_id=site, page=0, path=["results", 0], op="drop")
        evidence = tmp_path / "evidence.json"
        assert wh.load(reconcile_config(sim, evidence, page_size=page_size)).ok
        applied = wh.reconcile(evidence)
        assert applied.returncode == 0, applied.stderr
        marked = _nothing_hotjar_has_is_marked(wh, after)
        assert f"WARNING: site {site}: a page of its surveys held fewer than asked for" in applied.stdout
        # No survey of the site is judged gone; the responses of the surveys it did list
        # were read completely: those are judged.
        assert marked["surveys"] == set()
        assert marked["survey_responses"] == {(gone_response,)}
    finally:
        sim.stop()


def test_a_run_that_fails_writes_no_evidence_and_nothing_changes(wh: Warehouse, rsim: FaultSimulator, tmp_path: Path):
    sim = rsim
    assert wh.load(sim.config(page_size=PAGE)).ok
    before = truth(sim)
    deletions = delete_in_hotjar(sim)
    survey = deletions.survey
    evidence = tmp_path / "evidence.json"
    for name, fault, command in (
        ("403 even with a new token", error_reply(403), None),
        ("503 for good", error_reply(503), patched_command(**FAST)),
        ("a broken page for good", garbled_reply, patched_command(**FAST)),
    ):
        evidence.write_text("{}")  # an earlier run's leftover: a new run must not leave it standing
        sim.arm(survey_fault=(survey, fault))
        run = wh.load(reconcile_config(sim, evidence), tap_command=command)
        assert run.tap_returncode == 1, name
        last = [line for line in run.tap_stderr.splitlines() if line.strip()][-1]
        assert last.startswith("tap-hotjar: error:") and survey in last, (name, last)
        assert_nothing_changed(wh, evidence, before, name)
    sim.arm()
