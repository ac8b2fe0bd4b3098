"""The Hotjar API simulator behaves as the API reference says, over real HTTP."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
import requests

from hotjar_simulator import CURSOR_PREFIX, QUESTION_TYPES, HotjarSimulator
from hotjar_simulator.data import Dataset, person_email

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
LABELLED = {"rating-1-5", "rating-1-7", "nps", "reaction"}
OPTIONS = {"single-option", "multiple-option"}


def instant(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None and parsed.utcoffset() == dt.timedelta(0)
    return parsed


def assert_error(r: requests.Response, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"code", "msg"}
    assert isinstance(body["code"], str) and body["code"]
    assert isinstance(body["msg"], str) and body["msg"]
    return body


class Api:
    """A logged-in keep-alive session against one simulator."""

    def __init__(self, sim: HotjarSimulator) -> None:
        self.sim = sim
        self.session = requests.Session()
        self.login()

    def login(self) -> None:
        self.session.headers["Authorization"] = "Bearer " + grant(self.sim, self.session).json()["access_token"]

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.sim.url + path, params=params, timeout=10)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.session.post(self.sim.url + path, timeout=10, **kw)

    def responses_path(self, site_id: int, survey_id: str) -> str:
        return f"/v1/sites/{site_id}/surveys/{survey_id}/responses"

    def paginate(self, path: str, limit: int | None, **params: Any) -> tuple[list[dict], list[str]]:
        items: list[dict] = []
        cursors: list[str] = []
        cursor = None
        while True:
            q = dict(params)
            if limit is not None:
                q["limit"] = limit
            if cursor is not None:
                q["cursor"] = cursor
            r = self.get(path, **q)
            assert r.status_code == 200, r.text
            body = r.json()
            assert list(body) == ["next_cursor", "results"]
            items.extend(body["results"])
            cursor = body["next_cursor"]
            if cursor is None:
                return items, cursors
            cursors.append(cursor)
            assert body["results"], "a page before the last one is never empty"

    def close(self) -> None:
        self.session.close()


def grant(sim: HotjarSimulator, session: requests.Session | None = None, /, **overrides: str) -> requests.Response:
    data = {"grant_type": "client_credentials", "client_id": sim.client_id, "client_secret": sim.client_secret}
    data.update(overrides)
    poster = session or requests
    return poster.post(sim.url + "/v1/oauth/token", data=data, timeout=10)


@pytest.fixture(scope="module")
def sim() -> Iterator[HotjarSimulator]:
    with HotjarSimulator(seed=0, rate_limit=0) as s:
        yield s


@pytest.fixture
def api(sim: HotjarSimulator) -> Iterator[Api]:
    a = Api(sim)
    yield a
    a.close()


@pytest.fixture
def fresh() -> Iterator[HotjarSimulator]:
    """A small simulator a test may change (faults, new responses, deletions)."""
    with HotjarSimulator(seed=7, sites=2, surveys_per_site=3, responses_per_survey=40, rate_limit=0) as s:
        yield s


@pytest.fixture
def fresh_api(fresh: HotjarSimulator) -> Iterator[Api]:
    a = Api(fresh)
    yield a
    a.close()


def non_empty_surveys(sim: HotjarSimulator) -> list[tuple[int, str]]:
    return [(site, sv) for site in sim.site_ids for sv in sim.survey_ids(site) if sim.responses(site, sv)]


# ----------------------------------------------------------------------------- OAuth


def test_token_grant_returns_a_bearer_token_with_integer_expiry(sim: HotjarSimulator) -> None:
    r = grant(sim)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert len(body["access_token"]) >= 32
    assert grant(sim).json()["access_token"] != body["access_token"]


def test_token_accepts_a_charset_suffix_on_the_form_content_type(sim: HotjarSimulator) -> None:
    body = f"grant_type=client_credentials&client_id={sim.client_id}&client_secret={sim.client_secret}"
    r = requests.post(
        sim.url + "/v1/oauth/token",
        data=body,
        timeout=10,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
    )
    assert r.status_code == 200


@pytest.mark.parametrize("field", ["client_id", "client_secret"])
def test_token_with_wrong_credentials_is_401(sim: HotjarSimulator, field: str) -> None:
    assert_error(grant(sim, **{field: "wrong"}), 401)


@pytest.mark.parametrize(
    "overrides",
    [{"grant_type": "password"}, {"grant_type": ""}, {"client_id": ""}, {"client_secret": ""}],
)
def test_token_with_wrong_grant_type_or_missing_field_is_400(sim: HotjarSimulator, overrides: dict) -> None:
    assert_error(grant(sim, **overrides), 400)


def test_token_request_as_json_is_rejected(sim: HotjarSimulator) -> None:
    r = requests.post(
        sim.url + "/v1/oauth/token",
        timeout=10,
        json={"grant_type": "client_credentials", "client_id": sim.client_id, "client_secret": sim.client_secret},
    )
    assert_error(r, 415)
    assert_error(requests.get(sim.url + "/v1/oauth/token", timeout=10), 405)


def test_tokens_really_expire(fresh: HotjarSimulator) -> None:
    fresh.set_faults(token_lifetime=1.0)
    api = Api(fresh)
    try:
        site = fresh.site_ids[0]
        assert api.get(f"/v1/sites/{site}/surveys").status_code == 200
        time.sleep(1.1)
        assert_error(api.get(f"/v1/sites/{site}/surveys"), 403)
        api.login()
        assert api.get(f"/v1/sites/{site}/surveys").status_code == 200
    finally:
        api.close()


def test_missing_or_malformed_authorization_is_401(sim: HotjarSimulator) -> None:
    url = f"{sim.url}/v1/sites/{sim.site_ids[0]}/surveys"
    assert_error(requests.get(url, timeout=10), 401)
    token = grant(sim).json()["access_token"]
    assert_error(requests.get(url, timeout=10, headers={"Authorization": f"Basic {token}"}), 401)
    assert_error(requests.get(url, timeout=10, headers={"Authorization": "Bearer "}), 401)
    assert requests.get(url, timeout=10, headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_invalid_or_revoked_token_is_403(fresh: HotjarSimulator, fresh_api: Api) -> None:
    url = f"{fresh.url}/v1/sites/{fresh.site_ids[0]}/surveys"
    assert_error(requests.get(url, timeout=10, headers={"Authorization": "Bearer not-a-token"}), 403)
    assert fresh_api.get(f"/v1/sites/{fresh.site_ids[0]}/surveys").status_code == 200
    fresh.revoke_tokens()
    assert_error(fresh_api.get(f"/v1/sites/{fresh.site_ids[0]}/surveys"), 403)


# -------------------------------------------------------------------- 404 and 400


def test_unknown_site_survey_or_path_is_404(sim: HotjarSimulator, api: Api) -> None:
    site, survey = non_empty_surveys(sim)[0]
    other_site = next(s for s in sim.site_ids if s != site)
    unknown = "survey_00000000-0000-4000-8000-000000000000"
    assert_error(api.get("/v1/sites/999/surveys"), 404)
    assert_error(api.get("/v1/sites/abc/surveys"), 404)
    assert_error(api.get(f"/v1/sites/{site}/surveys/{unknown}"), 404)
    assert_error(api.get(f"/v1/sites/{site}/surveys/{unknown}/responses"), 404)
    assert_error(api.get(f"/v1/sites/{other_site}/surveys/{survey}"), 404)
    assert_error(api.get(f"/v1/sites/{other_site}/surveys/{survey}/responses"), 404)
    assert_error(api.get("/v1/nothing"), 404)


def test_empty_site_lists_no_surveys(sim: HotjarSimulator, api: Api) -> None:
    assert sim.empty_site_ids and set(sim.empty_site_ids) <= set(sim.site_ids)
    for site in sim.empty_site_ids:
        assert api.get(f"/v1/sites/{site}/surveys").json() == {"next_cursor": None, "results": []}
        assert sim.surveys(site) == []


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "", "1.5", " 5"])
def test_invalid_limit_is_400_on_both_list_endpoints(sim: HotjarSimulator, api: Api, limit: str) -> None:
    site, survey = non_empty_surveys(sim)[0]
    assert_error(api.get(f"/v1/sites/{site}/surveys", limit=limit), 400)
    assert_error(api.get(api.responses_path(site, survey), limit=limit), 400)


def test_default_limit_is_100_and_100_is_allowed(sim: HotjarSimulator, api: Api) -> None:
    site, survey = non_empty_surveys(sim)[0]
    assert len(sim.responses(site, survey)) == 120
    assert len(api.get(api.responses_path(site, survey)).json()["results"]) == 100
    assert len(api.get(api.responses_path(site, survey), limit=100).json()["results"]) == 100
    assert_error(api.session.get(sim.url + api.responses_path(site, survey) + "?limit=5&limit=6", timeout=10), 400)


def test_cursors_not_issued_for_this_endpoint_are_400(sim: HotjarSimulator, api: Api) -> None:
    (site, a), (site_b, b) = non_empty_surveys(sim)[:2]
    cursor_a = api.get(api.responses_path(site, a), limit=10).json()["next_cursor"]
    cursor_b = api.get(api.responses_path(site_b, b), limit=10).json()["next_cursor"]
    list_cursor = api.get(f"/v1/sites/{site}/surveys", limit=1).json()["next_cursor"]
    assert api.get(api.responses_path(site, a), limit=10, cursor=cursor_a).status_code == 200
    tampered = cursor_a[:10] + ("A" if cursor_a[10] != "A" else "B") + cursor_a[11:]
    for bad in ["2", "abc", "", CURSOR_PREFIX, tampered, cursor_b, list_cursor, cursor_a + "AAAA"]:
        body = assert_error(api.get(api.responses_path(site, a), limit=10, cursor=bad), 400)
        assert body["code"] == "invalid_cursor" or bad == ""
    other_site = next(s for s in sim.site_ids if s != site)
    assert_error(api.get(f"/v1/sites/{other_site}/surveys", limit=1, cursor=list_cursor), 400)
    assert_error(api.get(f"/v1/sites/{site}/surveys", limit=1, cursor=cursor_a), 400)


# ---------------------------------------------------------------------- pagination


@pytest.mark.parametrize("limit", [1, 7, 10, 100, None])
def test_pagination_serves_every_response_exactly_once_newest_first(
    sim: HotjarSimulator, api: Api, limit: int | None
) -> None:
    for site, survey in non_empty_surveys(sim)[: 3 if limit == 1 else 9]:
        items, _ = api.paginate(api.responses_path(site, survey), limit)
        assert items == sim.responses(site, survey)
        assert len({r["id"] for r in items}) == len(items) == 120


def test_limit_may_change_between_pages(sim: HotjarSimulator, api: Api) -> None:
    site, survey = non_empty_surveys(sim)[0]
    path = api.responses_path(site, survey)
    ids: list[str] = []
    cursor = None
    for limit in [3, 50, 1, 100]:
        body = api.get(path, limit=limit, **({"cursor": cursor} if cursor else {})).json()
        ids += [r["id"] for r in body["results"]]
        cursor = body["next_cursor"]
    assert cursor is None
    assert ids == [r["id"] for r in sim.responses(site, survey)]


def test_next_cursor_is_null_exactly_on_the_last_page(sim: HotjarSimulator, api: Api) -> None:
    site, survey = non_empty_surveys(sim)[0]
    path = api.responses_path(site, survey)
    first = api.get(path, limit=60).json()
    second = api.get(path, limit=60, cursor=first["next_cursor"]).json()
    assert len(first["results"]) == len(second["results"]) == 60
    assert first["next_cursor"] is not None and second["next_cursor"] is None


def test_cursors_are_opaque_and_need_url_encoding(sim: HotjarSimulator, api: Api) -> None:
    site, survey = non_empty_surveys(sim)[0]
    path = api.responses_path(site, survey)
    _, cursors = api.paginate(path, 5)
    assert len(cursors) == 23
    assert all(not c.isdigit() and "+" in c and "=" in c for c in cursors)
    assert any("/" in c for c in cursors)
    raw = api.session.get(f"{sim.url}{path}?limit=5&cursor={cursors[0]}", timeout=10)
    assert_error(raw, 400)  # '+' sent unencoded arrives as a space
    once = quote(cursors[0], safe="")
    assert_error(api.session.get(f"{sim.url}{path}?limit=5&cursor={quote(once, safe='')}", timeout=10), 400)
    ok = api.session.get(f"{sim.url}{path}?limit=5&cursor={once}", timeout=10)
    assert ok.status_code == 200


def test_surveys_list_paginates_newest_first_with_all_surveys(sim: HotjarSimulator, api: Api) -> None:
    for site in sim.site_ids:
        for limit in (1, 3, 100):
            items, cursors = api.paginate(f"/v1/sites/{site}/surveys", limit, with_questions="true")
            assert items == sim.surveys(site)
            assert all("+" in c for c in cursors)
        keys = [(instant(s["created_time"]), s["id"]) for s in sim.surveys(site)]
        assert keys == sorted(keys, reverse=True)


def test_responses_are_newest_first_compared_as_instants_ties_by_id(sim: HotjarSimulator) -> None:
    for site, survey in non_empty_surveys(sim):
        keys = [(instant(r["created_time"]), r["id"]) for r in sim.responses(site, survey)]
        assert keys == sorted(keys, reverse=True)
        assert len(set(keys)) == len(keys)


def test_data_mixes_timestamp_precisions_with_ties_across_page_boundaries(sim: HotjarSimulator) -> None:
    forms = set()
    string_order_lies = False
    for site, survey in non_empty_surveys(sim):
        rs = sim.responses(site, survey)
        times = [r["created_time"] for r in rs]
        at = [instant(t) for t in times]
        assert at[99] == at[100], "a tie straddles the limit=100 page boundary"
        assert at[9] == at[10], "a tie straddles the limit=10 page boundary"
        assert at[49] == at[50], "a tie straddles the limit=50 (and 7, 25) page boundary"
        for i in range(len(times) - 1):
            if at[i] == at[i + 1] and times[i] != times[i + 1]:
                forms.add(frozenset((times[i][19:], times[i + 1][19:])))
            if at[i] > at[i + 1] and times[i] < times[i + 1]:
                string_order_lies = True
        for t in times:
            m = re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6})?(Z|\+00:00)", t)
            assert m, t
    all_times = [r["created_time"] for site, sv in non_empty_surveys(sim) for r in sim.responses(site, sv)]
    assert any(re.search(r":\d\dZ$", t) for t in all_times)
    assert any(re.search(r"\.\d{3}Z$", t) for t in all_times)
    assert any(re.search(r"\.\d{6}Z$", t) for t in all_times)
    assert any(t.endswith("+00:00") for t in all_times)
    assert frozenset(("Z", ".000Z")) in forms, "the same instant written as ...:51Z and ...:51.000Z"
    assert string_order_lies, "string order differs from time order somewhere"


def test_responses_added_during_pagination_are_neither_skipped_nor_repeated(
    fresh: HotjarSimulator, fresh_api: Api
) -> None:
    site, survey = non_empty_surveys(fresh)[0]
    before = fresh.responses(site, survey)
    path = fresh_api.responses_path(site, survey)
    first = fresh_api.get(path, limit=10).json()
    added = fresh.add_responses(site, survey, 15)
    assert len(added) == 15
    newest_before = instant(before[0]["created_time"])
    assert all(instant(r["created_time"]) > newest_before for r in added)
    rest, _ = fresh_api.paginate(path, 10, cursor=first["next_cursor"])
    assert [r["id"] for r in first["results"] + rest] == [r["id"] for r in before]
    again, _ = fresh_api.paginate(path, 10)
    assert again == added + before == fresh.responses(site, survey)
    # the simulated clock only moves forward
    later = fresh.add_responses(site, survey, 1)
    assert instant(later[0]["created_time"]) > instant(added[0]["created_time"])


def test_responses_can_be_added_to_an_empty_survey(fresh: HotjarSimulator, fresh_api: Api) -> None:
    site = fresh.site_ids[0]
    empty = [sv for sv in fresh.survey_ids(site) if not fresh.responses(site, sv)]
    assert len(empty) == 1  # empty_surveys=1 per non-empty site
    assert fresh_api.get(fresh_api.responses_path(site, empty[0])).json() == {"next_cursor": None, "results": []}
    fresh.add_responses(site, empty[0], 3)
    assert len(fresh_api.get(fresh_api.responses_path(site, empty[0])).json()["results"]) == 3


def test_deleted_survey_answers_404_and_leaves_the_list(fresh: HotjarSimulator, fresh_api: Api) -> None:
    site, survey = non_empty_surveys(fresh)[0]
    cursor = fresh_api.get(fresh_api.responses_path(site, survey), limit=5).json()["next_cursor"]
    fresh.delete_survey(site, survey)
    assert_error(fresh_api.get(f"/v1/sites/{site}/surveys/{survey}"), 404)
    assert_error(fresh_api.get(fresh_api.responses_path(site, survey), limit=5, cursor=cursor), 404)
    listed = [s["id"] for s in fresh_api.get(f"/v1/sites/{site}/surveys").json()["results"]]
    assert survey not in listed and survey not in fresh.survey_ids(site)
    with pytest.raises(KeyError):
        fresh.responses(site, survey)


def test_deleted_responses_leave_their_pages_even_mid_pagination(fresh: HotjarSimulator, fresh_api: Api) -> None:
    site, survey = non_empty_surveys(fresh)[0]
    path = fresh_api.responses_path(site, survey)
    served = [r["id"] for r in fresh_api.paginate(path, limit=7)[0]]
    first = fresh_api.get(path, limit=7).json()
    # One response from the first page, two from later pages: a cursor issued before the
    # deletion still leads on, past the gap, to everything older that remains.
    gone = [served[2], served[10], served[-1]]
    assert fresh.delete_responses(site, survey, [*gone, "response_nope"]) == 3
    assert fresh.delete_responses(site, survey, gone) == 0
    remaining = [rid for rid in served if rid not in gone]
    assert [r["id"] for r in fresh.responses(site, survey)] == remaining
    assert [r["id"] for r in fresh_api.paginate(path, limit=7)[0]] == remaining
    rest, _ = [], None
    cursor = first["next_cursor"]
    while cursor is not None:
        page = fresh_api.get(path, limit=7, cursor=cursor).json()
        rest += [r["id"] for r in page["results"]]
        cursor = page["next_cursor"]
    assert rest == [rid for rid in served[7:] if rid not in gone]
    r = requests.post(
        fresh.url + "/_sim/delete-responses",
        json={"site_id": site, "survey_id": survey, "response_ids": [remaining[0]]},
        timeout=10,
    )
    assert r.json() == {"deleted": 1} and remaining[0] not in {x["id"] for x in fresh.responses(site, survey)}
    assert_error(requests.post(fresh.url + "/_sim/delete-responses", json={"site_id": site}, timeout=10), 400)
    bad = {"site_id": site, "survey_id": "nope", "response_ids": []}
    assert_error(requests.post(fresh.url + "/_sim/delete-responses", json=bad, timeout=10), 404)


def test_a_deleted_question_leaves_its_survey_but_not_the_answers_given_to_it(
    fresh: HotjarSimulator, fresh_api: Api
) -> None:
    site, survey = non_empty_surveys(fresh)[0]
    questions = next(s for s in fresh.surveys(site) if s["id"] == survey)["questions"]
    answered = {a["question_id"] for r in fresh.responses(site, survey) for a in r["answers"]}
    question = next(q["id"] for q in questions if q["id"] in answered)
    before = fresh.responses(site, survey)
    r = requests.post(
        fresh.url + "/_sim/delete-question",
        json={"site_id": site, "survey_id": survey, "question_id": question},
        timeout=10,
    )
    assert r.status_code == 200
    listed = {s["id"]: s for s in fresh_api.get(f"/v1/sites/{site}/surveys", with_questions="true").json()["results"]}
    assert [q["id"] for q in listed[survey]["questions"]] == [q["id"] for q in questions if q["id"] != question]
    assert fresh_api.get(f"/v1/sites/{site}/surveys/{survey}").json()["questions"] == listed[survey]["questions"]
    assert fresh.responses(site, survey) == before  # answers to it stay where they were
    new = fresh.add_responses(site, survey, 20)
    assert question not in {a["question_id"] for r in new for a in r["answers"]}
    bad = {"site_id": site, "survey_id": survey, "question_id": question}
    assert_error(requests.post(fresh.url + "/_sim/delete-question", json=bad, timeout=10), 404)


def test_identified_users_and_addresses_repeat_across_surveys_and_sites() -> None:
    data = HotjarSimulator(seed=3, sites=3, surveys_per_site=4, responses_per_survey=150)
    users: dict[str, set[tuple[int, str]]] = {}
    emails: dict[str, set[tuple[int, str]]] = {}
    for site in data.site_ids:
        for survey in data.survey_ids(site):
            for response in data.responses(site, survey):
                attrs = {a["name"]: a["value"] for a in response["user_attributes"]}
                if "user_id" in attrs:
                    users.setdefault(attrs["user_id"], set()).add((site, survey))
                    assert attrs["email"].strip().lower() == person_email(attrs["user_id"]).strip().lower()
                for answer in response["answers"]:
                    if "@" in (answer["answer"] or ""):
                        emails.setdefault(answer["answer"], set()).add((site, survey))
    assert any(len({site for site, _ in where}) > 1 for where in users.values())
    assert any(len({survey for _, survey in where}) > 1 for where in emails.values())
    # Attribute addresses come with capitals and spaces; one address contains another.
    written = {person_email(u) for u in users}
    assert any(e != e.strip().lower() for e in written)
    assert any(a != b and b in a for a in emails for b in emails)


# ------------------------------------------------------------------------ surveys


def test_with_questions_controls_the_questions_key(sim: HotjarSimulator, api: Api) -> None:
    site = sim.site_ids[0]
    truth = sim.surveys(site)
    for params in ({}, {"with_questions": "false"}):
        results = api.get(f"/v1/sites/{site}/surveys", **params).json()["results"]
        assert all("questions" not in s for s in results)
        assert results == [{k: v for k, v in s.items() if k != "questions"} for s in truth]
    assert api.get(f"/v1/sites/{site}/surveys", with_questions="true").json()["results"] == truth
    assert api.get(f"/v1/sites/{site}/surveys", with_questions=True).json()["results"] == truth
    assert_error(api.get(f"/v1/sites/{site}/surveys", with_questions="maybe"), 400)


def test_fetch_survey_always_includes_questions(sim: HotjarSimulator, api: Api) -> None:
    for site in sim.site_ids:
        for survey in sim.surveys(site):
            r = api.get(f"/v1/sites/{site}/surveys/{survey['id']}")
            assert r.status_code == 200
            assert r.json() == survey and survey["questions"]


def test_survey_objects_have_every_documented_field(sim: HotjarSimulator) -> None:
    for site in sim.site_ids:
        for s in sim.surveys(site):
            assert re.fullmatch(f"survey_{UUID}", s["id"])
            assert s["url"] == f"/v1/sites/{site}/surveys/{s['id']}"
            assert s["responses_url"] == s["url"] + "/responses"
            assert instant(s["updated_time"]) >= instant(s["created_time"])
            assert isinstance(s["is_enabled"], bool) and isinstance(s["sentiment_analysis_enabled"], bool)
            assert isinstance(s["name"], str) and s["name"]
            assert s["type"] in {"link", "full_screen", "popover"}
    names = {s["name"] for site in sim.site_ids for s in sim.surveys(site)}
    assert any(not n.isascii() for n in names)


def test_questions_cover_all_eleven_types_with_documented_shapes(sim: HotjarSimulator) -> None:
    seen_types = set()
    null_keys = absent_keys = images = 0
    for site in sim.site_ids:
        for s in sim.surveys(site):
            uuid = s["id"][len("survey_") :]
            for q in s["questions"]:
                seen_types.add(q["type"])
                assert re.fullmatch(f"question_{re.escape(uuid)}_[0-9a-f]{{8}}", q["id"])
                assert isinstance(q["is_required"], bool) and isinstance(q["text"], str)
                assert {"id", "type", "text", "is_required"} <= set(q)
                assert set(q) <= {"id", "type", "text", "is_required", "choices", "labels", "image_url"}
                if q["type"] in OPTIONS:
                    assert q["choices"] and all(set(c) == {"text", "allow_comment"} for c in q["choices"])
                    assert all(isinstance(c["allow_comment"], bool) for c in q["choices"])
                else:
                    assert q.get("choices") is None
                if q["type"] in LABELLED:
                    assert set(q["labels"]) == {"low_label", "high_label"}
                else:
                    assert q.get("labels") is None
                if q.get("image_url") is not None:
                    images += 1
                    assert q["image_url"].startswith("https://")
                null_keys += "choices" in q and q["choices"] is None
                absent_keys += "choices" not in q
    assert seen_types == set(QUESTION_TYPES)
    assert null_keys and absent_keys and images


def test_responses_have_every_documented_field_with_fitting_answers(sim: HotjarSimulator) -> None:
    keys = {
        "answers",
        "browser",
        "country",
        "created_time",
        "device",
        "hotjar_user_id",
        "id",
        "is_complete",
        "os",
        "recording_url",
        "response_origin_url",
        "user_attributes",
        "window_size",
    }
    seen: dict[str, Any] = {
        "attr_types": set(),
        "ghost": 0,
        "skipped": 0,
        "incomplete": 0,
        "null_window": 0,
        "empty_attrs": 0,
        "tags": 0,
        "comments": 0,
        "recordings": 0,
        "sentiments": set(),
    }
    sentiment_present: dict[int, set[bool]] = {}
    for site in sim.site_ids:
        for survey in sim.surveys(site):
            questions = {q["id"]: q for q in survey["questions"]}
            answerable = [q for q in survey["questions"] if q["type"] not in ("statement", "thank-you")]
            for r in sim.responses(site, survey["id"]):
                assert set(r) == keys
                assert re.fullmatch(f"response_{UUID}", r["id"])
                assert re.fullmatch(UUID, r["hotjar_user_id"])
                assert re.fullmatch("[a-z]{2}", r["country"])
                assert r["device"] in {"tablet", "mobile", "desktop"}
                assert isinstance(r["is_complete"], bool) and isinstance(r["browser"], str)
                assert r["response_origin_url"].startswith("https://")
                assert r["recording_url"] is None or r["recording_url"].startswith("https://")
                seen["recordings"] += r["recording_url"] is not None
                assert set(r["window_size"]) == {"width", "height"}
                seen["null_window"] += r["window_size"]["width"] is None
                seen["empty_attrs"] += not r["user_attributes"]
                seen["incomplete"] += not r["is_complete"]
                for attr in r["user_attributes"]:
                    assert set(attr) == {"name", "value"}
                    v = attr["value"]
                    kind = type(v).__name__
                    if isinstance(v, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT.*", v):
                        instant(v)
                        kind = "datetime"
                    seen["attr_types"].add(kind)
                answered = set()
                for a in r["answers"]:
                    sentiment_present.setdefault(site, set()).add("sentiment" in a)
                    assert set(a) - {"sentiment"} == {"answer", "comment", "question_id", "tags"}
                    assert isinstance(a["answer"], str)
                    assert a["comment"] is None or isinstance(a["comment"], str)
                    seen["comments"] += a["comment"] is not None
                    seen["tags"] += bool(a["tags"])
                    assert all(set(t) == {"name"} for t in a["tags"])
                    if "sentiment" in a:
                        assert a["sentiment"] in {"positive", "negative", "neutral", None}
                        seen["sentiments"].add(a["sentiment"])
                    q = questions.get(a["question_id"])
                    if q is None:
                        seen["ghost"] += 1
                        continue
                    answered.add(q["id"])
                    t, v = q["type"], a["answer"]
                    if t == "nps":
                        assert v in {str(i) for i in range(11)}
                    elif t in ("rating-1-5", "reaction"):
                        assert v in {"1", "2", "3", "4", "5"}
                    elif t == "rating-1-7":
                        assert v in {str(i) for i in range(1, 8)}
                    elif t == "single-option":
                        assert v in {c["text"] for c in q["choices"]}
                    elif t == "multiple-option":
                        texts = [c["text"] for c in q["choices"]]
                        parts = v.split(", ")
                        assert parts and set(parts) <= set(texts)
                        assert parts == sorted(parts, key=texts.index)
                    elif t == "email":
                        assert re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", v)
                    else:
                        assert t in ("short-text", "long-text")
                    if t not in ("short-text", "long-text") and "sentiment" in a:
                        assert a["sentiment"] is None
                if r["is_complete"]:
                    seen["skipped"] += len(answerable) - len(answered)
    assert seen["attr_types"] == {"str", "int", "float", "bool", "datetime"}
    assert all(
        seen[k]
        for k in ("ghost", "skipped", "incomplete", "null_window", "empty_attrs", "tags", "comments", "recordings")
    )
    assert seen["sentiments"] == {"positive", "negative", "neutral", None}
    assert {True} in sentiment_present.values() and {False} in sentiment_present.values()
    text = json.dumps(sim.ground_truth(), ensure_ascii=False)
    for sample in ("é", "Поиск", "εφαρμογή", "很好用", "検索", "الموقع", "😀"):
        assert sample in text


def test_responses_body_is_raw_utf8_json(sim: HotjarSimulator, api: Api) -> None:
    site, survey = non_empty_surveys(sim)[0]
    r = api.get(api.responses_path(site, survey))
    assert r.headers["Content-Type"] == "application/json"
    assert int(r.headers["Content-Length"]) == len(r.content)
    assert json.loads(r.content.decode("utf-8"))["results"] == sim.responses(site, survey)[:100]


# -------------------------------------------------------------------- user lookup


def test_user_lookup_accepts_valid_bodies_and_records_them(fresh: HotjarSimulator, fresh_api: Api) -> None:
    path = f"/v1/organizations/{fresh.organization_id}/user-lookup"
    bodies = [
        {
            "delete_all_hits": False,
            "data_subject_email": "text@example.com",
            "data_subject_site_id_to_user_id_map": {"42": "unique_id_42"},
        },
        {"data_subject_email": "only@example.com"},
        {"data_subject_site_id_to_user_id_map": {str(fresh.site_ids[0]): "u-1"}, "delete_all_hits": True},
    ]
    for i, body in enumerate(bodies):
        ctype = "application/json; charset=utf-8" if i % 2 == 0 else "application/json"
        r = fresh_api.post(path, data=json.dumps(body).encode(), headers={"Content-Type": ctype})
        assert r.status_code == 202 and r.content == b""
        assert r.headers["Content-Length"] == "0"
    assert fresh.user_lookups == [{"organization_id": fresh.organization_id, "body": b} for b in bodies]
    assert requests.get(fresh.url + "/_sim/user-lookups", timeout=10).json() == fresh.user_lookups
    assert fresh.counts()["user_lookup"] == 3


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"delete_all_hits": True},
        {"data_subject_email": ""},
        {"data_subject_email": None},
        {"data_subject_email": 42},
        {"data_subject_email": "not-an-email"},
        {"data_subject_site_id_to_user_id_map": {}},
        {"data_subject_site_id_to_user_id_map": {"42": 7}},
        {"data_subject_site_id_to_user_id_map": {"site": "u"}},
        {"data_subject_site_id_to_user_id_map": ["42", "u"]},
        {"data_subject_email": "a@example.com", "delete_all_hits": "yes"},
        {"data_subject_email": "a@example.com", "unexpected": 1},
        "not json",
        ["a@example.com"],
    ],
)
def test_user_lookup_rejects_invalid_bodies_with_400(fresh: HotjarSimulator, fresh_api: Api, body: Any) -> None:
    path = f"/v1/organizations/{fresh.organization_id}/user-lookup"
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    assert_error(fresh_api.post(path, data=raw, headers={"Content-Type": "application/json"}), 400)
    assert fresh.user_lookups == []


def test_user_lookup_checks_content_type_org_and_auth(fresh: HotjarSimulator, fresh_api: Api) -> None:
    body = {"data_subject_email": "a@example.com"}
    path = f"/v1/organizations/{fresh.organization_id}/user-lookup"
    assert_error(fresh_api.post(path, data=body), 415)
    assert_error(fresh_api.post(path, data=json.dumps(body), headers={"Content-Type": "text/plain"}), 415)
    assert_error(fresh_api.post(f"/v1/organizations/{fresh.organization_id + 1}/user-lookup", json=body), 404)
    assert_error(requests.post(fresh.url + path, json=body, timeout=10), 401)
    assert_error(fresh_api.get(path), 405)
    assert fresh.user_lookups == []
    assert fresh_api.post(path, json=body).status_code == 202


# --------------------------------------------------------------------- rate limit


def test_requests_above_the_rate_limit_get_429_with_retry_after() -> None:
    with (
        HotjarSimulator(seed=3, sites=1, surveys_per_site=1, responses_per_survey=5, rate_limit=5) as s,
        requests.Session() as session,
    ):
        token = grant(s, session).json()["access_token"]
        session.headers["Authorization"] = f"Bearer {token}"
        url = f"{s.url}/v1/sites/{s.site_ids[0]}/surveys"
        statuses = [session.get(url, timeout=10) for _ in range(8)]
        assert [r.status_code for r in statuses] == [200] * 4 + [429] * 4  # the token request was the 1st
        for r in statuses[4:]:
            assert_error(r, 429)
            assert r.headers["Retry-After"].isdigit() and int(r.headers["Retry-After"]) >= 1
        # control endpoints are never limited; another source address has its own window
        assert requests.get(s.url + "/_sim/counts", timeout=10).status_code == 200
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10, source_address=("127.0.0.2", 0))
        try:
            conn.request("GET", f"/v1/sites/{s.site_ids[0]}/surveys", headers={"Authorization": f"Bearer {token}"})
            assert conn.getresponse().status == 200
        finally:
            conn.close()
        time.sleep(1.05)
        assert session.get(url, timeout=10).status_code == 200
        counts = s.counts()
        assert counts["status"]["429"] == 4
        assert counts["max_requests_in_any_1s_window"] >= 9


# ------------------------------------------------------------------------- faults


def statuses(api: Api, n: int) -> list[int]:
    site = api.sim.site_ids[0]
    return [api.get(f"/v1/sites/{site}/surveys").status_code for _ in range(n)]


def test_error_429_every_n_with_configurable_retry_after(fresh: HotjarSimulator, fresh_api: Api) -> None:
    fresh.set_faults(error_429_every=3)
    site = fresh.site_ids[0]
    rs = [fresh_api.get(f"/v1/sites/{site}/surveys") for _ in range(6)]
    assert [r.status_code for r in rs] == [200, 200, 429, 200, 200, 429]
    assert rs[2].headers["Retry-After"] == "1"
    assert_error(rs[2], 429)
    fresh.set_faults(error_429_every=1, retry_after=None)
    r = fresh_api.get(f"/v1/sites/{site}/surveys")
    assert r.status_code == 429 and "Retry-After" not in r.headers
    fresh.set_faults(retry_after=4)
    assert fresh_api.get(f"/v1/sites/{site}/surveys").headers["Retry-After"] == "4"


def test_error_5xx_every_n_cycles_through_statuses(fresh: HotjarSimulator, fresh_api: Api) -> None:
    fresh.set_faults(error_5xx_every=2)
    assert statuses(fresh_api, 4) == [200, 503, 200, 503]
    fresh.set_faults(error_5xx_every=1, error_5xx_status=[500, 502, 503, 504])
    rs = [fresh_api.get(f"/v1/sites/{fresh.site_ids[0]}/surveys") for _ in range(5)]
    assert [r.status_code for r in rs] == [500, 502, 503, 504, 500]
    for r in rs:
        assert_error(r, r.status_code)


def test_faults_skip_the_token_endpoint_unless_asked(fresh: HotjarSimulator) -> None:
    fresh.set_faults(error_5xx_every=1)
    assert grant(fresh).status_code == 200
    fresh.set_faults(fault_token_endpoint=True)
    assert_error(grant(fresh), 503)
    fresh.set_faults()
    assert grant(fresh).status_code == 200


def test_reset_every_n_closes_the_connection_without_a_response(fresh: HotjarSimulator, fresh_api: Api) -> None:
    fresh.set_faults(reset_every=2)
    site = fresh.site_ids[0]
    assert fresh_api.get(f"/v1/sites/{site}/surveys").status_code == 200
    with pytest.raises(requests.ConnectionError):
        fresh_api.get(f"/v1/sites/{site}/surveys")
    assert fresh_api.get(f"/v1/sites/{site}/surveys").status_code == 200
    assert fresh.counts()["status"]["reset"] == 1


def test_stall_every_n_causes_client_read_timeouts(fresh: HotjarSimulator, fresh_api: Api) -> None:
    fresh.set_faults(stall_every=1, stall_seconds=0.6)
    fresh.reset_counts()
    with pytest.raises(requests.ReadTimeout):
        fresh_api.session.get(f"{fresh.url}/v1/sites/{fresh.site_ids[0]}/surveys", timeout=0.2)
    assert fresh.counts()["surveys_list"] == 1  # counted on arrival, answered later
    assert fresh.requests_log[-1][4] is None
    fresh.set_faults()
    assert statuses(fresh_api, 1) == [200]


def test_invalid_json_every_n_sends_a_garbled_200(fresh: HotjarSimulator, fresh_api: Api) -> None:
    fresh.set_faults(invalid_json_every=2)
    site, survey = non_empty_surveys(fresh)[0]
    good = fresh_api.get(fresh_api.responses_path(site, survey))
    bad = fresh_api.get(fresh_api.responses_path(site, survey))
    assert good.status_code == bad.status_code == 200
    assert int(bad.headers["Content-Length"]) == len(bad.content) < len(good.content)
    good.json()
    with pytest.raises(requests.JSONDecodeError):
        bad.json()


def test_latency_and_latency_spikes_delay_answers(fresh: HotjarSimulator, fresh_api: Api) -> None:
    site = fresh.site_ids[0]

    def elapsed() -> float:
        t = time.monotonic()
        assert fresh_api.get(f"/v1/sites/{site}/surveys").status_code == 200
        return time.monotonic() - t

    fresh.set_faults(latency=0.15)
    assert elapsed() >= 0.15
    fresh.set_faults(latency=0, latency_spike_every=2, latency_spike_seconds=0.3)
    first, second = elapsed(), elapsed()
    assert first < 0.15 and second >= 0.3


def test_set_faults_without_arguments_clears_everything(fresh: HotjarSimulator, fresh_api: Api) -> None:
    fresh.set_faults(error_429_every=1, error_5xx_every=1, invalid_json_every=1, latency=0.5, rate_limit=1)
    fresh.set_faults()
    assert statuses(fresh_api, 5) == [200] * 5
    with pytest.raises(TypeError):
        fresh.set_faults(no_such_fault=1)


# ---------------------------------------------------------------- counts, control


def test_counts_and_request_log_cover_api_requests_only(fresh: HotjarSimulator, fresh_api: Api) -> None:
    fresh.reset_counts()
    site, survey = non_empty_surveys(fresh)[0]
    other = non_empty_surveys(fresh)[1][1]
    grant(fresh)
    fresh_api.get(f"/v1/sites/{site}/surveys")
    cursor = fresh_api.get(f"/v1/sites/{site}/surveys", limit=1).json()["next_cursor"]
    fresh_api.get(f"/v1/sites/{site}/surveys/{survey}")
    fresh_api.get(fresh_api.responses_path(site, survey), limit=5)
    fresh_api.get(fresh_api.responses_path(site, survey), limit=5)
    fresh_api.get(fresh_api.responses_path(site, other), limit=5)
    fresh_api.post(f"/v1/organizations/{fresh.organization_id}/user-lookup", json={"data_subject_email": "a@b.io"})
    fresh_api.get("/v1/sites/1/surveys")
    fresh_api.get(f"/v1/sites/{site}/surveys", limit=1, cursor=cursor)
    requests.get(fresh.url + "/_sim/counts", timeout=10)
    c = fresh.counts()
    assert c == {
        "token": 1,
        "surveys_list": 4,
        "survey_get": 1,
        "responses": 3,
        "user_lookup": 1,
        "total": 10,
        "status": {"200": 8, "202": 1, "404": 1},
        "responses_by_survey": {survey: 2, other: 1},
        "max_requests_in_any_1s_window": c["max_requests_in_any_1s_window"],
    }
    times = [e[0] for e in fresh.requests_log]
    in_one_second = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    assert c["max_requests_in_any_1s_window"] == in_one_second  # 10 unless this machine is very slow
    log = fresh.requests_log
    assert len(log) == 10
    assert all(len(e) == 5 and isinstance(e[0], float) for e in log)
    assert log[-1][1:] == ("GET", f"/v1/sites/{site}/surveys", {"limit": "1", "cursor": cursor}, 200)
    assert requests.get(fresh.url + "/_sim/counts", timeout=10).json() == c
    assert requests.post(fresh.url + "/_sim/reset-counts", timeout=10).status_code == 200
    assert fresh.counts()["total"] == 0 and fresh.requests_log == []


def test_http_control_endpoints(fresh: HotjarSimulator, fresh_api: Api) -> None:
    url = fresh.url
    truth = requests.get(url + "/_sim/ground-truth", timeout=10).json()
    assert truth == fresh.ground_truth()
    assert truth["site_ids"] == fresh.site_ids and truth["organization_id"] == fresh.organization_id
    for site in fresh.site_ids:
        assert truth["sites"][str(site)]["surveys"] == fresh.surveys(site)
        for sv in fresh.survey_ids(site):
            assert truth["sites"][str(site)]["responses"][sv] == fresh.responses(site, sv)
    site, survey = non_empty_surveys(fresh)[0]
    before = len(fresh.responses(site, survey))
    r = requests.post(url + "/_sim/add-responses", json={"site_id": site, "survey_id": survey, "count": 4}, timeout=10)
    assert r.status_code == 200 and r.json()["total"] == 4
    assert len(fresh.responses(site, survey)) == before + 4
    sizes = {(s, sv): len(fresh.responses(s, sv)) for s, sv in non_empty_surveys(fresh)}
    assert requests.post(url + "/_sim/add-responses", json={"count": 2}, timeout=10).json()["total"] == 2 * len(sizes)
    assert {k: len(fresh.responses(*k)) for k in sizes} == {k: n + 2 for k, n in sizes.items()}
    bad = {"site_id": site, "survey_id": "nope", "count": 1}
    assert_error(requests.post(url + "/_sim/add-responses", json=bad, timeout=10), 404)
    assert (
        requests.post(
            url + "/_sim/faults", json={"error_5xx_every": 1, "error_5xx_status": 502}, timeout=10
        ).status_code
        == 200
    )
    assert statuses(fresh_api, 1) == [502]
    assert_error(requests.post(url + "/_sim/faults", json={"bogus": 1}, timeout=10), 400)
    assert requests.post(url + "/_sim/faults", json={}, timeout=10).status_code == 200
    assert statuses(fresh_api, 1) == [200]
    assert requests.get(url + "/_sim/user-lookups", timeout=10).json() == []
    assert fresh.counts()["total"] == 3  # the token request and two surveys lists; no control request


def test_http_is_1_1_keep_alive_with_content_length(sim: HotjarSimulator) -> None:
    token = grant(sim).json()["access_token"]
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    try:
        for path in [f"/v1/sites/{sim.site_ids[0]}/surveys", "/v1/nothing", f"/v1/sites/{sim.site_ids[0]}/surveys"]:
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            resp = conn.getresponse()
            body = resp.read()
            assert resp.version == 11 and not resp.will_close
            assert int(resp.getheader("Content-Length") or -1) == len(body)
            json.loads(body)
        sock = conn.sock
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        conn.getresponse().read()
        assert conn.sock is sock  # the same connection all along
    finally:
        conn.close()


# --------------------------------------------------------------- data, config, CLI


def test_data_is_deterministic_from_the_seed() -> None:
    a = Dataset(seed=5, sites=2, surveys_per_site=2, responses_per_survey=(0, 30))
    b = Dataset(seed=5, sites=2, surveys_per_site=2, responses_per_survey=(0, 30))
    c = Dataset(seed=6, sites=2, surveys_per_site=2, responses_per_survey=(0, 30))
    assert a.site_ids == b.site_ids != c.site_ids
    for (key, sv), (key_b, sv_b) in zip(a.by_id.items(), b.by_id.items(), strict=True):
        assert key == key_b and sv.bodies == sv_b.bodies and sv.with_q_bytes == sv_b.with_q_bytes


def test_dataset_size_options() -> None:
    with HotjarSimulator(
        seed=2, sites=3, surveys_per_site=5, responses_per_survey=(10, 90), empty_sites=2, empty_surveys=2
    ) as s:
        assert len(s.site_ids) == 5 and len(s.empty_site_ids) == 2
        sizes = []
        for site in s.site_ids:
            ids = s.survey_ids(site)
            if site in s.empty_site_ids:
                assert ids == []
                continue
            assert len(ids) == 5
            counts = [len(s.responses(site, sv)) for sv in ids]
            assert counts.count(0) == 2
            sizes += [n for n in counts if n]
        assert all(10 <= n <= 90 for n in sizes) and len(set(sizes)) > 1
        assert s.config(start_date="2024-01-01T00:00:00Z") == {
            "client_id": "sim-client-id",
            "client_secret": "sim-client-secret",
            "site_ids": s.site_ids,
            "api_url": s.url,
            "start_date": "2024-01-01T00:00:00Z",
        }


def test_building_a_large_dataset_is_fast() -> None:
    t = time.perf_counter()
    d = Dataset(seed=0, sites=2, surveys_per_site=5, responses_per_survey=1500, empty_surveys=0)
    assert sum(len(sv.bodies) for sv in d.by_id.values()) == 15_000
    assert time.perf_counter() - t < 5


def test_cli_prints_its_config_and_serves_until_sigterm(tmp_path: Path) -> None:
    out = tmp_path / "config.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hotjar_simulator",
            "--port",
            "0",
            "--sites",
            "1",
            "--surveys-per-site",
            "2",
            "--responses-per-survey",
            "5",
            "--rate-limit",
            "0",
            "--error-5xx-every",
            "2",
            "--config-out",
            str(out),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        lines = {}
        while "config" not in lines:
            line = proc.stdout.readline()
            assert line, "the simulator exited early"
            key, _, value = line.rstrip("\n").partition(": ")
            lines[key] = value
        config = json.loads(lines["config"])
        assert json.loads(out.read_text()) == config
        assert config["api_url"] == lines["url"] and lines["client_id"] == config["client_id"]
        assert [int(x) for x in lines["site_ids"].split(",")] == config["site_ids"]
        assert lines["organization_id"] == "424242"
        with requests.Session() as session:
            token = session.post(
                config["api_url"] + "/v1/oauth/token",
                timeout=10,
                data={
                    "grant_type": "client_credentials",
                    "client_id": config["client_id"],
                    "client_secret": config["client_secret"],
                },
            ).json()["access_token"]
            session.headers["Authorization"] = f"Bearer {token}"
            got = [
                session.get(f"{config['api_url']}/v1/sites/{config['site_ids'][0]}/surveys", timeout=10).status_code
                for _ in range(2)
            ]
            assert got == [200, 503]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
