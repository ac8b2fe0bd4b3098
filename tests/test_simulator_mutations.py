"""The simulator's mutation and request hooks do what hotjar_simulator/README.md says.

Each test talks HTTP to a real simulator and checks the served JSON against the
unmutated ground truth, which a mutation must never touch.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from hotjar_simulator import MISSING, DropConnection, HotjarSimulator, mutate_value
from hotjar_simulator.mutation import HUGE_INTEGER, HUGE_LIST_ITEMS, HUGE_STRING_CHARS

PAGE = 10


@pytest.fixture(scope="module")
def sim():
    with HotjarSimulator(
        seed=3, sites=2, surveys_per_site=2, responses_per_survey=25, empty_sites=0, empty_surveys=0, rate_limit=0
    ) as s:
        yield s


@pytest.fixture(autouse=True)
def no_mutation(sim):
    sim.clear_mutation()
    sim.set_request_hook()
    yield
    sim.clear_mutation()
    sim.set_request_hook()


class Client:
    def __init__(self, sim: HotjarSimulator) -> None:
        self.sim = sim
        self.session = requests.Session()
        token = self.session.post(
            sim.url + "/v1/oauth/token",
            data={"grant_type": "client_credentials", "client_id": sim.client_id, "client_secret": sim.client_secret},
            timeout=10,
        ).json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.sim.url + path, params=params, timeout=10)

    def pages(self, site: int, survey: str | None = None) -> list[dict]:
        path = f"/v1/sites/{site}/surveys" + (f"/{survey}/responses" if survey else "")
        params: dict[str, Any] = {"limit": PAGE}
        if survey is None:
            params["with_questions"] = "true"
        out = []
        while True:
            body = self.get(path, **params).json()
            out.append(body)
            if not body["next_cursor"] or len(out) > 5:
                return out
            params["cursor"] = body["next_cursor"]


@pytest.fixture
def api(sim):
    return Client(sim)


def first_survey(sim: HotjarSimulator) -> tuple[int, str]:
    site = sim.site_ids[0]
    return site, sim.survey_ids(site)[0]


def served_responses(pages: list[dict]) -> list[dict]:
    return [r for p in pages for r in p["results"]]


def test_a_response_field_is_mutated_where_served_and_nowhere_else(sim, api):
    site, survey = first_survey(sim)
    truth = sim.responses(site, survey)
    target = truth[12]  # on the second page of 10
    sim.set_mutation(
        target="response", response_id=target["id"], path=["window_size", "width"], op="retype", to="string"
    )
    served = served_responses(api.pages(site, survey))
    changed = [i for i, (a, b) in enumerate(zip(served, truth, strict=True)) if a != b]
    assert changed == [12]
    assert served[12]["window_size"] == {**target["window_size"], "width": str(target["window_size"]["width"])}
    assert sim.responses(site, survey) == truth  # the data is untouched
    assert sim.ground_truth()["sites"][str(site)]["responses"][survey] == truth
    (mutation,) = sim.mutations()
    assert mutation["hits"] == 1
    (entry,) = sim.mutation_log()
    assert (entry["route"], entry["site_id"], entry["survey_id"], entry["page"]) == ("responses", site, survey, 1)
    assert entry["cursor"] is not None
    assert json.loads(entry["body"])["results"][2] == served[12]


@pytest.mark.parametrize(
    ("op", "kw", "check"),
    [
        ("drop", {}, lambda before, after: "country" not in after),
        ("null", {}, lambda before, after: after["country"] is None),
        ("retype", {"to": "integer"}, lambda before, after: after["country"] == 42),
        ("retype", {"to": "number"}, lambda before, after: after["country"] == 1.5),
        ("retype", {"to": "boolean"}, lambda before, after: after["country"] is True),
        ("retype", {"to": "array"}, lambda before, after: after["country"] == ["x", 1]),
        ("retype", {"to": "object"}, lambda before, after: after["country"] == {"x": 1}),
        ("huge", {}, lambda before, after: len(after["country"]) == HUGE_STRING_CHARS),
        ("wrap_list", {}, lambda before, after: after["country"] == [before["country"]]),
        ("wrap_object", {}, lambda before, after: after["country"] == {"value": before["country"]}),
        ("set", {"value": "1024x768"}, lambda before, after: after["country"] == "1024x768"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_each_value_operation(sim, api, op, kw, check):
    site, survey = first_survey(sim)
    target = sim.responses(site, survey)[0]
    sim.set_mutation(target="response", response_id=target["id"], path=["country"], op=op, **kw)
    after = api.pages(site, survey)[0]["results"][0]
    assert check(target, after), after.get("country", MISSING)
    assert {k: v for k, v in after.items() if k != "country"} == {k: v for k, v in target.items() if k != "country"}


def test_an_answer_element_and_a_whole_response_can_be_replaced_or_removed(sim, api):
    site, survey = first_survey(sim)
    truth = sim.responses(site, survey)
    with_answers = next(r for r in truth[:PAGE] if len(r["answers"]) >= 2)
    sim.set_mutation(target="answer", response_id=with_answers["id"], index=1, op="retype", to="string")
    served = next(r for r in api.pages(site, survey)[0]["results"] if r["id"] == with_answers["id"])
    assert served["answers"][1] == json.dumps(with_answers["answers"][1], ensure_ascii=False, separators=(",", ":"))
    assert served["answers"][0] == with_answers["answers"][0]

    sim.set_mutation(target="response", response_id=truth[3]["id"], op="drop")
    page = api.pages(site, survey)[0]
    assert [r["id"] for r in page["results"]] == [r["id"] for r in truth[:PAGE] if r["id"] != truth[3]["id"]]

    sim.set_mutation(target="response", response_id=truth[4]["id"], op="null")
    assert api.pages(site, survey)[0]["results"][4] is None


def test_huge_lists_and_integers(sim, api):
    site, survey = first_survey(sim)
    target = next(r for r in sim.responses(site, survey)[:PAGE] if r["answers"])
    sim.set_mutation(target="response", response_id=target["id"], path=["answers"], op="huge")
    served = next(r for r in api.pages(site, survey)[0]["results"] if r["id"] == target["id"])
    assert len(served["answers"]) == HUGE_LIST_ITEMS
    assert served["answers"][: len(target["answers"])] == target["answers"]
    assert mutate_value(1024, "huge") == HUGE_INTEGER + 1024 > 2**63 - 1


def test_survey_and_question_mutations_apply_to_the_list_and_the_single_survey(sim, api):
    site, survey = first_survey(sim)
    truth = sim.surveys(site)[0]
    assert truth["id"] == survey
    sim.set_mutation(target="question", survey_id=survey, index=0, path=["id"], op="null")
    listed = api.pages(site)[0]["results"][0]
    assert listed["questions"][0]["id"] is None
    assert listed["questions"][1:] == truth["questions"][1:]
    single = api.get(f"/v1/sites/{site}/surveys/{survey}").json()
    assert single["questions"][0]["id"] is None
    assert sim.mutations()[0]["hits"] == 2

    sim.set_mutation(target="survey", survey_id=survey, path=["questions"], op="retype", to="object")
    assert api.pages(site)[0]["results"][0]["questions"] == {"x": 1}
    # Listed without questions: nothing there to change, so nothing changes.
    hits = sim.mutations()[0]["hits"]
    assert "questions" not in api.get(f"/v1/sites/{site}/surveys", with_questions="false").json()["results"][0]
    assert sim.mutations()[0]["hits"] == hits


def test_page_mutations_pick_one_page_of_one_list(sim, api):
    site, survey = first_survey(sim)
    sim.set_mutation(
        target="page", site_id=site, survey_id=survey, page=2, path=["results", 1], op="retype", to="string"
    )
    pages = api.pages(site, survey)
    assert len(pages) == 3
    assert isinstance(pages[2]["results"][1], str)
    assert all(isinstance(r, dict) for p in pages[:2] for r in p["results"])
    other_site = sim.site_ids[1]
    assert all(isinstance(r, dict) for p in api.pages(other_site, sim.survey_ids(other_site)[0]) for r in p["results"])

    sim.set_mutation(target="page", site_id=site, path=["next_cursor"], op="retype", to="number")
    listed = api.get(f"/v1/sites/{site}/surveys", limit=PAGE).json()
    assert listed["next_cursor"] == 1.5  # the survey list, not a responses page

    sim.set_mutation(target="page", site_id=site, survey_id=survey, page=0, path=[], op="retype", to="array")
    assert api.get(f"/v1/sites/{site}/surveys/{survey}/responses", limit=PAGE).json() == ["x", 1]


def test_echo_cursor_sends_the_request_cursor_back(sim, api):
    site, survey = first_survey(sim)
    sim.set_mutation(target="page", site_id=site, survey_id=survey, page=1, op="echo_cursor")
    path = f"/v1/sites/{site}/surveys/{survey}/responses"
    first = api.get(path, limit=PAGE).json()
    second = api.get(path, limit=PAGE, cursor=first["next_cursor"]).json()
    assert second["next_cursor"] == first["next_cursor"]
    assert sim.mutation_log()[0]["cursor"] == first["next_cursor"]


def test_transient_applies_once_permanent_every_time(sim, api):
    site, survey = first_survey(sim)
    path = f"/v1/sites/{site}/surveys/{survey}/responses"
    sim.set_mutation(target="page", site_id=site, survey_id=survey, path=["results"], op="null", transient=True)
    assert api.get(path, limit=PAGE).json()["results"] is None
    assert api.get(path, limit=PAGE).json()["results"] is not None
    assert sim.mutations()[0] | {} == {**sim.mutations()[0], "hits": 1, "spent": True}

    sim.set_mutation(target="page", site_id=site, survey_id=survey, path=["results"], op="null")
    assert [api.get(path, limit=PAGE).json()["results"] for _ in range(3)] == [None, None, None]
    assert sim.mutations()[0]["hits"] == 3


def test_reply_replaces_the_answer_and_cut_closes_it_half_way(sim, api):
    site, survey = first_survey(sim)
    path = f"/v1/sites/{site}/surveys/{survey}/responses"
    sim.set_mutation(
        target="page",
        site_id=site,
        survey_id=survey,
        op="reply",
        body="<html><body>Bad gateway</body></html>",
        headers={"Content-Type": "text/html"},
    )
    r = api.get(path, limit=PAGE)
    assert (r.status_code, r.headers["Content-Type"]) == (200, "text/html")
    assert r.text == "<html><body>Bad gateway</body></html>"

    sim.set_mutation(target="page", site_id=site, survey_id=survey, op="cut")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api.get(path, limit=PAGE)
    entry = sim.mutation_log()[0]
    assert json.loads(entry["body"])["results"][0]["id"] == sim.responses(site, survey)[0]["id"]


@pytest.mark.parametrize("status", [200, 201, 204, 302, 418, 499, 500])
def test_user_lookup_answers_can_be_anything(sim, api, status):
    sim.set_mutation(target="user_lookup", op="reply", status=status, body="" if status == 204 else "<h1>x</h1>")
    r = api.session.post(
        f"{sim.url}/v1/organizations/{sim.organization_id}/user-lookup",
        json={"data_subject_email": "jane@example.com"},
        timeout=10,
        allow_redirects=False,
    )
    assert r.status_code == status
    assert r.text == ("" if status == 204 else "<h1>x</h1>")
    # The request itself was processed as usual: only the answer differs.
    assert sim.user_lookups[-1]["body"] == {"data_subject_email": "jane@example.com"}


def test_user_lookup_cut_mid_answer(sim, api):
    sim.set_mutation(target="user_lookup", op="cut", transient=True)
    url = f"{sim.url}/v1/organizations/{sim.organization_id}/user-lookup"
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api.session.post(url, json={"data_subject_email": "jane@example.com"}, timeout=10)
    assert api.session.post(url, json={"data_subject_email": "jane@example.com"}, timeout=10).status_code == 202


def test_unknown_targets_are_refused_when_set(sim):
    site, survey = first_survey(sim)
    with pytest.raises(KeyError):
        sim.set_mutation(target="response", response_id="response_nope", op="drop")
    with pytest.raises(IndexError):
        sim.set_mutation(target="question", survey_id=survey, index=99, op="drop")
    with pytest.raises(ValueError, match="retype needs"):
        sim.set_mutation(target="response", response_id=sim.responses(site, survey)[0]["id"], op="retype")
    with pytest.raises(ValueError, match="reply or a cut"):
        sim.set_mutation(target="user_lookup", op="drop")
    with pytest.raises(TypeError, match="unknown mutation setting"):
        sim.set_mutation(target="page", site_id=site, op="drop", bogus=1)
    assert sim.mutations() == []


def test_http_control_endpoint(sim, api):
    site, survey = first_survey(sim)
    target = sim.responses(site, survey)[0]
    r = requests.post(
        sim.url + "/_sim/mutation",
        json={"target": "response", "response_id": target["id"], "path": ["is_complete"], "op": "set", "value": "yes"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert api.pages(site, survey)[0]["results"][0]["is_complete"] == "yes"
    state = requests.get(sim.url + "/_sim/mutation", timeout=10).json()
    assert state["mutations"][0]["hits"] == 1
    assert len(state["log"]) == 1
    bad = requests.post(sim.url + "/_sim/mutation", json={"target": "response", "op": "drop"}, timeout=10)
    assert bad.status_code == 400
    assert "response_id" in bad.json()["msg"]
    assert requests.post(sim.url + "/_sim/mutation", json={}, timeout=10).json() == {"mutations": []}
    assert api.pages(site, survey)[0]["results"][0]["is_complete"] == target["is_complete"]


def test_request_hooks_see_every_api_request_and_may_answer_or_drop(sim, api):
    site, survey = first_survey(sim)
    seen: list[tuple[str, tuple]] = []
    after_statuses: list[int] = []

    def before(request):
        seen.append((request.route, request.args))
        if request.route == "survey_get":
            return 418, b'{"code":"teapot","msg":"hooked"}', {}
        if request.route == "responses" and "cursor" in request.query:
            raise DropConnection
        return None

    def after(request, reply):
        after_statuses.append(reply[0])
        return None

    sim.set_request_hook(before=before, after=after)
    assert api.get(f"/v1/sites/{site}/surveys/{survey}").status_code == 418
    first = api.get(f"/v1/sites/{site}/surveys/{survey}/responses", limit=PAGE)
    assert first.status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError):
        api.get(f"/v1/sites/{site}/surveys/{survey}/responses", limit=PAGE, cursor=first.json()["next_cursor"])
    assert seen == [("survey_get", (str(site), survey)), ("responses", (str(site), survey))] * 1 + [
        ("responses", (str(site), survey))
    ]
    assert after_statuses == [418, 200]  # a dropped connection has no answer to see
    sim.set_request_hook()
    assert api.get(f"/v1/sites/{site}/surveys/{survey}").status_code == 200
