"""Reconciliation: what Hotjar deleted leaves the warehouse, and only that.

The simulator's data is loaded into a real warehouse (PostgreSQL and DuckDB, through
the real loaders); then responses, a survey and a question are deleted in the
simulator, a reconciliation runs (the tap with reconcile_evidence_path, into the
loader) and is applied (`hotjar-reconcile`). Each raw table is compared with the
simulator's ground truth: the live rows are exactly what Hotjar still has, the rows
marked deleted exactly what it no longer has. What happens when the run cannot be
trusted is in test_reconcile_safety.py; the Meltano jobs, with the models, in
test_analytics.py.
"""

from __future__ import annotations

import subprocess
import typing as t

import yaml

from tests.e2e_helpers import REPO_ROOT, TABLES
from tests.reconcile_helpers import PAGE, delete_in_hotjar, first_load, minus, nothing, reconcile_config, truth
from tests.warehouses import RECONCILE

if t.TYPE_CHECKING:
    from pathlib import Path

    from tests.test_reliability import FaultSimulator
    from tests.warehouses import Warehouse


# ------------------------------------------------------------------ what leaves


def test_reconciliation_removes_exactly_what_hotjar_deleted(wh: Warehouse, rsim: FaultSimulator, tmp_path: Path):
    state, before = first_load(wh, rsim)
    deletions = delete_in_hotjar(rsim)
    after = truth(rsim)
    evidence = tmp_path / "evidence" / "evidence.json"

    # The nightly state is handed over too (as a scheduler might): it is ignored.
    run = wh.load(reconcile_config(rsim, evidence), state=state)
    assert run.ok, run.tap_stderr[-2000:]
    assert "the state's bookmarks are ignored" in run.tap_stderr
    applied = wh.reconcile(evidence)
    assert applied.returncode == 0, applied.stderr
    assert "WARNING" not in applied.stdout

    assert wh.all_keys() == after
    assert wh.all_keys(deleted=True) == minus(before, after)
    # In detail: the survey with everything of it, the three responses with their answers,
    # the question alone: the answers given to it stay, their responses exist.
    gone = wh.all_keys(deleted=True)
    assert (deletions.gone_survey,) in gone["surveys"]
    assert {(r,) for r in deletions.deleted_responses} < gone["survey_responses"]
    assert deletions.question in gone["survey_questions"]
    question = deletions.question[1]
    answers_to_it = wh.query(
        f"select count(*) from {wh.raw_schema}.survey_answers where question_id = ? and _sdc_deleted_at is null",
        [question],
    )[0][0]
    assert answers_to_it > 0
    assert f"surveys 1, survey_questions {len(gone['survey_questions'])}" in applied.stdout

    # Applied once: the evidence is used up, and a rerun changes nothing.
    assert not evidence.exists() and evidence.with_name("evidence.json.applied").exists()
    again = wh.reconcile(evidence)
    assert again.returncode == 0 and "Nothing to apply" in again.stdout
    # A second reconciliation finds nothing more to remove.
    run = wh.load(reconcile_config(rsim, evidence))
    assert run.ok
    second = wh.reconcile(evidence)
    assert "Hotjar no longer has: surveys 0, survey_questions 0, survey_responses 0, survey_answers 0." in second.stdout
    assert wh.all_keys() == after

    # The nightly incremental run goes on from its own state: one page per survey (its
    # bookmark's), and it neither brings back nor hides anything.
    rsim.reset_counts()
    nightly = wh.load(rsim.config(page_size=PAGE), state=state)
    assert nightly.ok
    listed = [s for site in rsim.site_ids for s in rsim.survey_ids(site)]
    assert rsim.counts()["responses_by_survey"] == dict.fromkeys(listed, 1)
    assert wh.all_keys() == after
    assert wh.all_keys(deleted=True) == minus(before, after)


def test_hard_delete_removes_the_rows_instead_of_marking_them(wh: Warehouse, rsim: FaultSimulator, tmp_path: Path):
    _, before = first_load(wh, rsim)
    delete_in_hotjar(rsim)
    evidence = tmp_path / "evidence.json"
    assert wh.load(reconcile_config(rsim, evidence)).ok
    dry = wh.reconcile(evidence, "--hard-delete", "--dry-run")
    assert dry.returncode == 0 and "Dry run: nothing was changed." in dry.stdout
    after = truth(rsim)
    everything = {table: before[table] | after[table] for table in TABLES}  # the run loaded new responses
    assert wh.all_keys(deleted=None) == everything and wh.all_keys(deleted=True) == nothing()
    assert evidence.exists()
    applied = wh.reconcile(evidence, "--hard-delete")
    assert applied.returncode == 0, applied.stderr
    assert wh.all_keys(deleted=None) == after


# ------------------------------------------------------------------ the command


def test_bad_input_gets_one_clear_line_and_changes_nothing(wh: Warehouse, rsim: FaultSimulator, tmp_path: Path):
    _, before = first_load(wh, rsim)
    evidence = tmp_path / "evidence.json"
    assert wh.load(reconcile_config(rsim, evidence)).ok

    def fails(*args: str) -> str:
        proc = subprocess.run([RECONCILE, *args], capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode in (1, 2) and "Traceback" not in proc.stderr, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines[-1].startswith("hotjar-reconcile: error:"), proc.stderr
        return lines[-1]

    common = ["--evidence", str(evidence)]
    assert "--warehouse is required" in fails(*common)
    assert "unknown warehouse URL scheme mysql:" in fails("--warehouse", "mysql://x@h/db", *common)
    secret = "s3cr3t-pw"
    line = fails("--warehouse", f"postgresql://postgres:{secret}@127.0.0.1:1/test", *common)
    assert "cannot connect" in line and secret not in line and "********" in line
    assert "no schema 'nope'" in fails("--warehouse", wh.url, "--raw-schema", "nope", *common)
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "something else"}')
    assert "is not reconciliation evidence" in fails("--warehouse", wh.url, "--evidence", str(broken))
    assert wh.all_keys(deleted=True) == nothing() and wh.all_keys() == before and evidence.exists()


def test_the_tap_and_the_apply_step_share_one_evidence_file_in_meltano_yml():
    project = yaml.safe_load((REPO_ROOT / "meltano.yml").read_text())
    extractors = {p["name"]: p for p in project["plugins"]["extractors"]}
    utilities = {p["name"]: p for p in project["plugins"]["utilities"]}
    written = extractors["tap-hotjar--reconcile"]["config"]["reconcile_evidence_path"]
    read = next(s["value"] for s in utilities["hotjar-reconcile"]["settings"] if s["name"] == "evidence")
    assert written == read
    jobs = {j["name"]: j["tasks"] for j in project["jobs"]}
    for kind in ("postgres", "duckdb"):
        assert jobs[f"hotjar-reconcile-{kind}"] == [
            f"tap-hotjar--reconcile target-{kind} hotjar-reconcile:{kind} dbt-{kind}:build"
        ]
    assert any(s["job"] == "hotjar-reconcile-postgres" for s in project["schedules"])
