"""Data-subject requests reach the warehouse: `hotjar-user-lookup --warehouse`.

The simulator's data (identified users and e-mail addresses that repeat across surveys
and sites) is loaded by the real pipeline pieces (the tap into target-postgres or
target-duckdb) and the models are built by dbt; then subjects are erased, reported or
previewed. Which responses are a subject's is computed here, independently, from the
simulator's data by the documented rules; every rule has a near miss that must stay:
the same user id on another site, an address that merely contains the subject's.
After an erasure every row of every table in both schemas is searched for the
subject's address and response ids.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import typing as t

import pytest

from tap_hotjar.warehouse.data_subjects import hashed_email
from tests.warehouses import USER_LOOKUP

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from hotjar_simulator import HotjarSimulator
    from tests.warehouses import Warehouse

SALT = "a-long-random-salt-for-the-tests"


@pytest.fixture
def people() -> Iterator[HotjarSimulator]:
    from tests.test_reliability import FaultSimulator  # noqa: PLC0415

    sim = FaultSimulator(seed=11, sites=3, surveys_per_site=3, responses_per_survey=(50, 90), rate_limit=None)
    sim.start()
    yield sim
    sim.stop()


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class Subjects(t.NamedTuple):
    email: str  # appears as an answer and (capitalised or upper-case, with spaces) as an attribute
    near_email: str  # contains it: mary.<email>
    site: int
    user: str  # identified on `site` and on another site too
    other_site: int


def choose_subjects(sim: HotjarSimulator) -> Subjects:
    attribute_values: dict[str, set[str]] = {}
    answers: set[str] = set()
    user_sites: dict[str, set[int]] = {}
    for site in sim.site_ids:
        for survey in sim.survey_ids(site):
            for r in sim.responses(site, survey):
                for a in r["user_attributes"]:
                    if a["name"] == "email":
                        attribute_values.setdefault(a["value"].strip().lower(), set()).add(a["value"])
                    if a["name"] == "user_id":
                        user_sites.setdefault(a["value"], set()).add(site)
                answers |= {a["answer"].strip().lower() for a in r["answers"] if "@" in (a["answer"] or "")}
    every = set(attribute_values) | answers
    email = next(
        e
        for e in sorted(attribute_values)
        if e in answers and f"mary.{e}" in every and any(v != e for v in attribute_values[e])
    )
    user, sites = next((u, s) for u, s in sorted(user_sites.items()) if len(s) > 1)
    site, other = sorted(sites)[:2]
    return Subjects(email, f"mary.{email}", site, user, other)


def responses_of(
    sim: HotjarSimulator, *, email: str | None = None, site_user: tuple[int, str] | None = None
) -> dict[str, int]:
    """The subject's response ids (-> their number of answers), by the documented rules."""
    found: dict[str, int] = {}
    address = email.strip().lower() if email else None
    for site in sim.site_ids:
        for survey in sim.survey_ids(site):
            for r in sim.responses(site, survey):
                attrs = r["user_attributes"]
                mine = (
                    site_user is not None
                    and site == site_user[0]
                    and any(a["name"] == "user_id" and _text(a["value"]) == site_user[1] for a in attrs)
                )
                if address is not None:
                    mine = mine or any(_text(a["value"]).strip().lower() == address for a in attrs)
                    mine = mine or any((a["answer"] or "").strip().lower() == address for a in r["answers"])
                if mine:
                    found[r["id"]] = len(r["answers"])
    return found


def _lookup(
    sim: HotjarSimulator, tmp_path: Path, wh: Warehouse, *args: str, models: bool = True, env: dict | None = None
) -> t.Any:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(sim.config(organization_id=sim.organization_id)))
    command = [USER_LOOKUP, "--config", str(config), "--warehouse", wh.url, "--raw-schema", wh.raw_schema]
    command += ["--models-schema", wh.models_schema if models else "none", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, env={**os.environ, **(env or {})}
    )


def _subjects_file(tmp_path: Path, s: Subjects) -> Path:
    path = tmp_path / "requests.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "site_users", "reference"])
        writer.writerow([f"  {s.email.upper()} ", "", "DSR-1"])  # as someone might type it
        writer.writerow(["", f"{s.site}={s.user}", "DSR-2"])
    return path


def _loaded(wh: Warehouse, sim: HotjarSimulator, *, models: bool = True) -> None:
    loaded = wh.load(sim.config(page_size=100))
    assert loaded.ok, loaded.tap_stderr[-2000:] + loaded.target_stderr[-2000:]
    if models:
        wh.build_models()


def _row_counts(wh: Warehouse) -> dict[tuple[str, str], int]:
    return {(s, tb): wh.query(f'select count(*) from "{s}"."{tb}"')[0][0] for s, tb in wh.tables()}


# ------------------------------------------------------------------ erasure


def test_erasure_removes_the_subjects_from_every_table_and_nothing_else(
    wh: Warehouse, people: HotjarSimulator, meltano: Path, tmp_path: Path
):
    sim = people
    s = choose_subjects(sim)
    _loaded(wh, sim)
    by_email = responses_of(sim, email=s.email)
    by_user = responses_of(sim, site_user=(s.site, s.user))
    near_email = responses_of(sim, email=s.near_email)
    near_user = responses_of(sim, site_user=(s.other_site, s.user))
    assert by_email and by_user and near_email and near_user
    assert not (set(near_email) & set(by_email)) and not (set(near_user) & set(by_user))
    erased_ids = set(by_email) | set(by_user)
    live_before = {r for (r,) in wh.keys("survey_responses")}

    log = tmp_path / "erasures.jsonl"
    erase = ("--file", str(_subjects_file(tmp_path, s)), "--log", str(log), "--delete", "--yes")
    run = _lookup(sim, tmp_path, wh, *erase)
    assert run.returncode == 0, run.stdout + run.stderr
    assert [b["body"]["delete_all_hits"] for b in sim.user_lookups] == [True, True]

    # No table in either schema holds the subject's address or any of their responses.
    for schema, table, row in wh.every_row():
        cells = " ".join(str(v) for v in row).lower()
        assert s.email not in cells.replace(s.near_email, ""), (schema, table)
        assert not any(rid in cells for rid in erased_ids), (schema, table)
    # The near misses stay: another address containing it, the same id on another site.
    live = {r for (r,) in wh.keys("survey_responses")}
    assert live == live_before - erased_ids
    assert set(near_email) <= live and set(near_user) - erased_ids <= live
    in_models = {r for (r,) in wh.query(f"select distinct response_id from {wh.models_schema}.hotjar__answers")}
    assert {r for r, n in near_email.items() if n} <= in_models

    # The log holds numbers, per subject, and no personal data.
    first, second = (json.loads(line) for line in log.read_text().splitlines())
    assert first["warehouse"]["responses"] == len(by_email)
    assert first["warehouse"]["answers"] == sum(by_email.values())
    rest = {r: n for r, n in by_user.items() if r not in by_email}  # the rest were erased with the first
    assert second["warehouse"]["responses"] == len(rest)
    assert second["warehouse"]["answers"] == sum(rest.values())
    assert first["warehouse"]["model_rows"] > 0 and second["warehouse"]["model_rows"] > 0
    text = log.read_text().lower()
    assert s.email not in text and s.user not in text

    # A rerun erases nothing more and says 0; Hotjar is not asked again.
    again = _lookup(
        sim, tmp_path, wh, "--file", str(_subjects_file(tmp_path, s)), "--log", str(log), "--delete", "--yes"
    )
    assert again.returncode == 0, again.stderr
    assert len(sim.user_lookups) == 2
    assert "erased 0 response(s) and 0 answer(s) (and 0 model row(s)) of 2 subject(s)" in again.stdout


# ------------------------------------------------------------------ access and preview


def test_dry_run_counts_and_an_access_request_reports_without_changing_anything(
    wh: Warehouse, people: HotjarSimulator, tmp_path: Path
):
    sim = people
    s = choose_subjects(sim)
    _loaded(wh, sim, models=False)
    before = _row_counts(wh)
    by_email = responses_of(sim, email=s.email)
    by_user = responses_of(sim, site_user=(s.site, s.user))
    requests = str(_subjects_file(tmp_path, s))

    dry = _lookup(sim, tmp_path, wh, "--file", requests, "--delete", "--dry-run", models=False)
    assert dry.returncode == 0, dry.stderr
    assert (
        f"requests.csv line 2: would erase {len(by_email)} response(s) and {sum(by_email.values())} answer(s)"
        in dry.stdout
    )
    assert (
        f"requests.csv line 3: would erase {len(by_user)} response(s) and {sum(by_user.values())} answer(s)"
        in dry.stdout
    )
    assert sim.user_lookups == [] and _row_counts(wh) == before

    reports = tmp_path / "reports"
    access = _lookup(sim, tmp_path, wh, "--file", requests, "--report-dir", str(reports), models=False)
    assert access.returncode == 0, access.stderr
    assert [b["body"]["delete_all_hits"] for b in sim.user_lookups] == [False, False]
    assert _row_counts(wh) == before
    files = sorted(reports.glob("*.json"))
    assert [f.name.split("-")[:2] for f in files] == [["DSR", "1"], ["DSR", "2"]]
    for path, expected in zip(files, (by_email, by_user), strict=True):
        assert path.stat().st_mode & 0o777 == 0o600
        document = json.loads(path.read_text())
        got = {r["id"]: r for r in document["responses"]}
        assert set(got) == set(expected)
        assert {rid: len(r["answer_rows"]) for rid, r in got.items()} == expected
        assert all(isinstance(r["user_attributes"], list) for r in got.values())
    first = json.loads(files[0].read_text())
    assert any(s.email in json.dumps(r).lower() for r in first["responses"])


# ------------------------------------------------------------------ order and failure


def test_a_refused_subject_stays_and_an_unusable_warehouse_sends_nothing(
    wh: Warehouse, people: HotjarSimulator, tmp_path: Path
):
    sim = people
    s = choose_subjects(sim)
    _loaded(wh, sim, models=False)
    by_email = responses_of(sim, email=s.email)
    by_user = responses_of(sim, site_user=(s.site, s.user))
    requests = str(_subjects_file(tmp_path, s))

    # The schemas are not there: nothing is sent to Hotjar, not even a token request.
    sim.reset_counts()
    missing = _lookup(
        sim, tmp_path, wh, "--file", requests, "--delete", "--yes", "--raw-schema", "no_such_schema", models=False
    )
    assert missing.returncode == 2
    assert "no schema 'no_such_schema'" in missing.stderr and "nothing was sent" in missing.stderr
    assert sim.user_lookups == [] and sim.counts().get("token", 0) == 0
    assert "Traceback" not in missing.stderr

    # Hotjar refuses the first subject: its rows stay; the second is erased.
    sim.set_mutation(target="user_lookup", op="reply", status=400, body='{"code":"bad","msg":"no"}', transient=True)
    run = _lookup(sim, tmp_path, wh, "--file", requests, "--delete", "--yes", models=False)
    assert run.returncode == 1
    live = {r for (r,) in wh.keys("survey_responses")}
    assert set(by_email) <= live
    assert not (set(by_user) - set(by_email)) & live


def test_answers_hashed_by_the_privacy_recipe_are_matched_with_its_salt(
    wh: Warehouse, people: HotjarSimulator, tmp_path: Path
):
    sim = people
    s = choose_subjects(sim)
    recipe = {
        "stream_map_config": {"pii_salt": SALT},
        "stream_maps": {
            "survey_answers": {
                "answer": "sha256(config.get('pii_salt', '') + answer.strip().lower()) if answer and "
                "(question_type == 'email' or (question_type is None and '@' in answer)) else answer"
            },
            "survey_responses": {"user_attributes": "__NULL__", "answers": "__NULL__"},
        },
    }
    loaded = wh.load({**sim.config(page_size=100), **recipe})
    assert loaded.ok, loaded.tap_stderr[-2000:]
    hashed = hashed_email(s.email, SALT)
    holders = {
        r for (r,) in wh.query(f"select response_id from {wh.raw_schema}.survey_answers where answer = ?", [hashed])
    }
    assert holders  # the recipe wrote the hash, not the address
    # With the salt, the hash is matched; user attributes are gone, so only answers can match.
    run = _lookup(
        sim, tmp_path, wh, "--email", s.email, "--delete", "--yes", models=False, env={"HOTJAR_PII_SALT": SALT}
    )
    assert run.returncode == 0, run.stderr
    left = wh.query(f"select count(*) from {wh.raw_schema}.survey_answers where answer = ?", [hashed])[0][0]
    assert left == 0
    assert not holders & {r for (r,) in wh.keys("survey_responses")}
