"""The tap against the simulator: records, schemas, state, requests and errors."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from jsonschema import Draft7Validator, FormatChecker

from hotjar_simulator import HotjarSimulator
from tests.conftest import TAP
from tests.expected import KEYS, expected_records, instant, keyed, pages_needed

STREAMS = ("surveys", "survey_questions", "survey_responses", "survey_answers")


def bookmarks(state: dict) -> dict[str, str]:
    """survey_id -> bookmark, from the tap's final STATE."""
    partitions = state["bookmarks"]["survey_responses"].get("partitions", [])
    return {p["context"]["survey_id"]: p["replication_key_value"] for p in partitions if "replication_key_value" in p}


def test_full_sync_equals_ground_truth(shared_sim, tap):
    run = tap(shared_sim.config())
    assert run.returncode == 0, run.stderr
    expected = expected_records(shared_sim)
    for stream in STREAMS:
        got = run.records[stream]
        assert len(got) == len(expected[stream]), stream
        assert keyed(stream, got) == keyed(stream, expected[stream]), stream
    assert sum(len(v) for v in expected.values()) > 500  # a dataset worth the name


def test_every_record_is_valid_against_its_schema_message(shared_sim, tap):
    run = tap(shared_sim.config())
    assert run.returncode == 0, run.stderr
    seen_schema: set[str] = set()
    validators = {}
    for message in run.messages:
        if message["type"] == "SCHEMA":
            seen_schema.add(message["stream"])
            validators[message["stream"]] = Draft7Validator(message["schema"], format_checker=FormatChecker())
            assert message["key_properties"] == list(KEYS[message["stream"]])
        elif message["type"] == "RECORD":
            assert message["stream"] in seen_schema, "RECORD before its SCHEMA"
            errors = list(validators[message["stream"]].iter_errors(message["record"]))
            assert not errors, (message["stream"], errors[0].message)
    assert seen_schema == set(STREAMS)
    # Once per stream and run, not once per survey partition.
    assert Counter(m["stream"] for m in run.messages if m["type"] == "SCHEMA") == dict.fromkeys(STREAMS, 1)


def test_primary_keys_are_unique_in_every_stream(shared_sim, tap):
    run = tap(shared_sim.config())
    for stream in STREAMS:
        keys = Counter(tuple(r[k] for k in KEYS[stream]) for r in run.records[stream])
        assert keys and max(keys.values()) == 1, stream


def test_one_token_and_minimum_requests_for_a_full_sync(small_sim, tap):
    small_sim.reset_counts()
    run = tap(small_sim.config(page_size=25))
    assert run.returncode == 0, run.stderr
    counts = small_sim.counts()
    assert counts["token"] == 1
    for site_id in small_sim.site_ids:
        for survey_id in small_sim.survey_ids(site_id):
            times = [r["created_time"] for r in small_sim.responses(site_id, survey_id)]
            assert counts["responses_by_survey"].get(survey_id, 0) == pages_needed(times, 25, None)
    assert counts["survey_get"] == 0


def test_answers_carry_question_type_so_nps_needs_no_join(shared_sim, tap):
    run = tap(shared_sim.config())
    nps = [a for a in run.records["survey_answers"] if a["question_type"] == "nps"]
    assert nps
    assert all(0 <= int(a["answer"]) <= 10 for a in nps if a["answer"] is not None)


def test_second_run_from_state_emits_new_responses_and_nothing_older(small_sim, tap):
    first = tap(small_sim.config(page_size=20))
    assert first.returncode == 0, first.stderr
    state = first.final_state
    marks = bookmarks(state)
    surveys_with_responses = [
        (site, sid)
        for site in small_sim.site_ids
        for sid in small_sim.survey_ids(site)
        if small_sim.responses(site, sid)
    ]
    assert set(marks) == {sid for _, sid in surveys_with_responses}
    # State stays small: one entry per survey, nothing per response.
    assert len(json.dumps(state)) < 400 * (len(marks) + 4)

    added = {}
    for site, sid in surveys_with_responses[:3]:
        added[sid] = {r["id"] for r in small_sim.add_responses(site, sid, 27)}
    small_sim.reset_counts()
    second = tap(small_sim.config(page_size=20), state=state)
    assert second.returncode == 0, second.stderr

    emitted = second.records["survey_responses"]
    emitted_ids = {r["id"] for r in emitted}
    for ids in added.values():
        assert ids <= emitted_ids
    for r in emitted:
        assert instant(r["created_time"]) >= instant(marks[r["survey_id"]])
    # Exactly the pages needed: down to the first page holding an older response.
    counts = small_sim.counts()
    for site, sid in surveys_with_responses:
        times = [r["created_time"] for r in small_sim.responses(site, sid)]
        assert counts["responses_by_survey"].get(sid, 0) == pages_needed(times, 20, marks[sid]), sid
    # Bookmarks moved to the newest response of each survey.
    new_marks = bookmarks(second.final_state)
    for site, sid in surveys_with_responses:
        newest = max(instant(r["created_time"]) for r in small_sim.responses(site, sid))
        assert instant(new_marks[sid]) == newest
    # Answers follow their responses, and only theirs.
    assert {a["response_id"] for a in second.records["survey_answers"]} <= emitted_ids


def test_bookmarks_are_written_in_one_utc_form(small_sim, tap):
    run = tap(small_sim.config())
    for value in bookmarks(run.final_state).values():
        assert len(value) == len("2023-02-23T11:39:51.473000+00:00") and value.endswith("+00:00")


def test_start_date_limits_requests_and_records(small_sim, tap):
    every = sorted(
        instant(r["created_time"])
        for site in small_sim.site_ids
        for sid in small_sim.survey_ids(site)
        for r in small_sim.responses(site, sid)
    )
    start = every[len(every) // 2].to_iso8601_string()
    small_sim.reset_counts()
    run = tap(small_sim.config(start_date=start, page_size=15))
    assert run.returncode == 0, run.stderr
    got = run.records["survey_responses"]
    assert got and all(instant(r["created_time"]) >= instant(start) for r in got)
    wanted = sum(1 for t in every if t >= instant(start))
    assert len(got) == wanted
    counts = small_sim.counts()
    for site in small_sim.site_ids:
        for sid in small_sim.survey_ids(site):
            times = [r["created_time"] for r in small_sim.responses(site, sid)]
            assert counts["responses_by_survey"].get(sid, 0) == pages_needed(times, 15, start)


def test_deselected_responses_still_feed_selected_answers(shared_sim, tap):
    discovered = tap(shared_sim.config(), extra_args=("--discover",))
    catalog = json.loads(discovered.stdout)
    for entry in catalog["streams"]:
        selected = entry["tap_stream_id"] == "survey_answers"
        for md in entry["metadata"]:
            if md["breadcrumb"] == []:
                md["metadata"]["selected"] = selected
    run = tap(shared_sim.config(), catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert set(run.records) == {"survey_answers"}
    assert len(run.records["survey_answers"]) == len(expected_records(shared_sim)["survey_answers"])


def test_a_survey_deleted_since_the_last_run_keeps_its_bookmark_and_the_rest_syncs(small_sim, tap):
    site = small_sim.site_ids[0]
    victim = next(sid for sid in small_sim.survey_ids(site) if small_sim.responses(site, sid))
    first = tap(small_sim.config())
    small_sim.delete_survey(site, victim)
    run = tap(small_sim.config(), state=first.final_state)
    assert run.returncode == 0, run.stderr
    assert victim not in {r["id"] for r in run.records["surveys"]}
    assert not [r for r in run.records["survey_responses"] if r["survey_id"] == victim]
    # Its bookmark is carried over untouched; the other surveys' are all there.
    assert bookmarks(run.final_state) == bookmarks(first.final_state)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"client_id": None}, "client_id is required"),
        ({"client_secret": ""}, "client_secret"),
        ({"site_ids": []}, "site_ids"),
        ({"site_ids": ["abc"]}, "site_ids.0"),
        ({"site_ids": "1,2"}, "site_ids"),
        ({"page_size": 0}, "page_size must be at least 1"),
        ({"page_size": 101}, "page_size must be at most 100"),
        ({"page_size": "ten"}, "page_size"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"start_date": "2024-13-45T00:00:00Z"}, "start_date"),
        ({"api_url": "api.hotjar.io"}, "api_url"),
        ({"api_url": "ftp://api.hotjar.io"}, "api_url"),
        ({"organization_id": -3}, "organization_id"),
    ],
)
def test_bad_config_gives_one_clear_line(shared_sim, tap, change, needle):
    config = shared_sim.config()
    for key, value in change.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    run = tap(config)
    assert run.returncode != 0
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    # Refused before anything else is logged: the error is the only line.
    assert len(run.stderr_lines) == 1, run.stderr
    last = run.stderr_lines[-1]
    assert last.startswith("tap-hotjar: error: invalid config") and needle in last
    assert shared_sim.client_secret not in run.stderr


def test_wrong_credentials_name_the_cause_without_leaking(shared_sim, tap):
    config = shared_sim.config(client_secret="not-the-secret-123")
    run = tap(config)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert "credentials" in run.stderr_lines[-1]
    assert "not-the-secret-123" not in run.stderr + run.stdout
    assert not [m for m in run.messages if m["type"] == "RECORD"]


@pytest.mark.parametrize(
    ("state", "needle"),
    [
        ([1, 2], "state must be a JSON object"),
        ({"bookmarks": []}, "bookmarks"),
        (
            {
                "bookmarks": {
                    "survey_responses": {
                        "partitions": [
                            {
                                "context": {"site_id": 1, "survey_id": "s"},
                                "replication_key": "created_time",
                                "replication_key_value": "soon",
                            }
                        ]
                    }
                }
            },
            "not a timestamp",
        ),
    ],
)
def test_bad_state_gives_one_clear_line(shared_sim, tap, state, needle):
    run = tap(shared_sim.config(), state=state)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert needle in run.stderr_lines[-1]
    assert not [m for m in run.messages if m["type"] == "RECORD"]


def test_state_file_that_is_not_json(shared_sim, tmp_path):
    (tmp_path / "c.json").write_text(json.dumps(shared_sim.config()))
    (tmp_path / "s.json").write_text("{not json")
    proc = subprocess.run(
        [TAP, "--config", str(tmp_path / "c.json"), "--state", str(tmp_path / "s.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0 and proc.stdout == ""
    assert "state file" in proc.stderr and "Traceback" not in proc.stderr


def test_undocumented_fields_do_not_break_a_sync(tap):
    with HotjarSimulator(seed=5, sites=1, surveys_per_site=2, responses_per_survey=30, extra_fields=True) as sim:
        run = tap(sim.config())
        assert run.returncode == 0, run.stderr
        expected = expected_records(sim)
    top_level_extras = {"targeting_rules", "language", "device_pixel_ratio"}
    for stream in ("surveys", "survey_responses"):
        wanted = [{k: v for k, v in r.items() if k not in top_level_extras} for r in expected[stream]]
        assert keyed(stream, run.records[stream]) == keyed(stream, wanted)
    # Nested values are kept as the API sent them, extras included.
    assert all(a.get("answer_kind") == "text" for r in run.records["survey_responses"] for a in r["answers"])
    assert len(run.records["survey_answers"]) == len(expected["survey_answers"])


def test_sample_config_works_against_the_simulator_started_by_hand(tap):
    """sample_config.json fits `python -m hotjar_simulator` with its defaults (port 8765)."""
    sample = json.loads((Path(__file__).resolve().parent.parent / "sample_config.json").read_text())
    with HotjarSimulator() as sim:  # the CLI's defaults, on a free port
        assert sample["site_ids"] == sim.site_ids
        assert sample["organization_id"] == sim.organization_id
        run = tap({**sample, "api_url": sim.url})
        assert run.returncode == 0, run.stderr
        assert len(run.records["survey_responses"]) == len(expected_records(sim)["survey_responses"])


def test_token_body_with_the_references_trailing_comma_is_accepted(small_sim, tap):
    small_sim.set_faults(token_trailing_comma=True)
    run = tap(small_sim.config())
    assert run.returncode == 0, run.stderr
    assert small_sim.counts()["token"] == 1
    assert len(run.records["survey_responses"]) == len(expected_records(small_sim)["survey_responses"])


def test_answers_sent_as_numbers_or_lists_are_emitted_as_text(tap):
    """The reference documents `answer` as a string; other JSON types become their text."""
    with HotjarSimulator(seed=9, sites=1, surveys_per_site=1, responses_per_survey=3, empty_surveys=0) as sim:
        site, survey = sim.site_ids[0], sim.survey_ids(sim.site_ids[0])[0]
        body_answers = [10, 4.5, True, ["A", "B"], None, "text"]
        sim.add_responses(site, survey, 1)
        patch_newest_answers(sim, site, survey, body_answers)
        run = tap(sim.config())
    assert run.returncode == 0, run.stderr
    newest = max(run.records["survey_responses"], key=lambda r: r["created_time"])
    texts = [a["answer"] for a in newest["answers"]]
    assert texts == ["10", "4.5", "true", '["A", "B"]', None, "text"]
    emitted = sorted(
        (a for a in run.records["survey_answers"] if a["response_id"] == newest["id"]), key=lambda a: a["position"]
    )
    assert [a["answer"] for a in emitted] == texts


def patch_newest_answers(sim: HotjarSimulator, site: int, survey: str, values: list) -> None:
    """Rewrite the newest response's answers in the simulator's stored bodies."""
    data = sim.data.survey(site, survey)
    body = json.loads(data.bodies[-1])
    body["answers"] = [{"answer": v, "comment": None, "question_id": f"q{i}", "tags": []} for i, v in enumerate(values)]
    data.bodies[-1] = json.dumps(body).encode()
    sim.data.sites[site].rebuild()


def test_lower_case_rfc3339_timestamps_are_read_as_instants(tap, shared_sim):
    """RFC 3339 allows `t` and `z` in lower case; pendulum alone does not."""
    run = tap(shared_sim.config(start_date="2024-06-01t00:00:00z"))
    assert run.returncode == 0, run.stderr
    assert all(instant(r["created_time"]) >= instant("2024-06-01T00:00:00Z") for r in run.records["survey_responses"])


PROGRESS = re.compile(
    r"Progress: (\d+) of (\d+) surveys; (\d+) responses and (\d+) answers written; (\d+) requests, "
    r"[\d.]+ per second; (about (?:\d+ h )?(?:\d+ min )?\d+ s left|time left not yet known)$"
)
DONE = re.compile(r"Done: (\d+) of (\d+) surveys; (\d+) responses and (\d+) answers written; (\d+) requests, ")


def test_a_long_run_says_how_far_it_is_at_most_once_an_interval(tap):
    with HotjarSimulator(seed=7, sites=2, surveys_per_site=3, responses_per_survey=(20, 140), latency=0.05) as sim:
        run = tap(sim.config(page_size=10), env={"TAP_HOTJAR_PROGRESS_SECONDS": "0.3"})
        counts = sim.counts()
    assert run.returncode == 0, run.stderr[-2000:]
    progress = [m.groups() for line in run.stderr_lines if (m := PROGRESS.search(line))]
    assert len(progress) >= 2, run.stderr[-2000:]
    done = [m.groups() for line in run.stderr_lines if (m := DONE.search(line))]
    assert len(done) == 1
    responses, answers = len(run.records["survey_responses"]), len(run.records["survey_answers"])
    requests = counts["token"] + counts["surveys_list"] + counts["responses"]
    # The final line: every listed survey, every record and request of the run.
    assert [int(x) for x in done[0]] == [6, 6, responses, answers, requests]
    # The lines before it: counts that only grow, up to those of the final line.
    numbers = [[int(x) for x in groups[:5]] for groups in progress] + [[int(x) for x in done[0]]]
    for earlier, later in itertools.pairwise(numbers):
        assert all(a <= b for a, b in zip(earlier, later, strict=True)), numbers
    assert any("left" in groups[5] and "about" in groups[5] for groups in progress)
    # Nothing per record or page at INFO: far fewer lines than pages.
    assert len(progress) < counts["responses"] / 2


def test_a_short_run_logs_only_its_final_progress_line(small_sim, tap):
    run = tap(small_sim.config())
    assert run.returncode == 0, run.stderr[-2000:]
    assert not [line for line in run.stderr_lines if "Progress: " in line]
    assert len([line for line in run.stderr_lines if DONE.search(line)]) == 1


@pytest.mark.parametrize("value", ["0", "-5", "soon", "inf", "nan"])
def test_a_bad_progress_interval_is_one_clear_line(small_sim, tap, value):
    run = tap(small_sim.config(), env={"TAP_HOTJAR_PROGRESS_SECONDS": value})
    assert run.returncode != 0
    assert "TAP_HOTJAR_PROGRESS_SECONDS must be a number of seconds above 0" in run.stderr
    assert "Traceback" not in run.stderr
    assert not run.messages


# Stream maps, deselected properties and flattening: singer-sdk applies them to every
# record (the tap writes records directly only when none applies: sdk_internals (9)).


def test_stream_maps_remove_filter_rename_and_add_in_every_record(shared_sim, tap):
    maps = {
        "survey_responses": {"user_attributes": None, "__filter__": "is_complete"},
        "survey_answers": {"__alias__": "answers", "answer_text": "answer"},
    }
    run = tap({**shared_sim.config(), "stream_maps": maps})
    assert run.returncode == 0, run.stderr
    expected = expected_records(shared_sim)
    complete = [r for r in expected["survey_responses"] if r["is_complete"]]
    assert 0 < len(complete) < len(expected["survey_responses"])
    want_responses = [{k: v for k, v in r.items() if k != "user_attributes"} for r in complete]
    assert keyed("survey_responses", run.records["survey_responses"]) == keyed("survey_responses", want_responses)
    # Answers of the responses the map lets through only (singer-sdk syncs no child of a filtered record).
    ids = {r["id"] for r in complete}
    want_answers = [{**a, "answer_text": a["answer"]} for a in expected["survey_answers"] if a["response_id"] in ids]
    assert "survey_answers" not in run.records
    assert keyed("survey_answers", run.records["answers"]) == keyed("survey_answers", want_answers)
    for stream in ("surveys", "survey_questions"):
        assert keyed(stream, run.records[stream]) == keyed(stream, expected[stream])


def test_deselected_properties_are_left_out_of_every_record_at_any_depth(shared_sim, tap):
    catalog = json.loads(tap(shared_sim.config(), extra_args=("--discover",)).stdout)
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == "survey_responses":
            for breadcrumb in (["properties", "user_attributes"], ["properties", "window_size", "properties", "width"]):
                entry["metadata"].append({"breadcrumb": breadcrumb, "metadata": {"selected": False}})
    run = tap(shared_sim.config(), catalog=catalog)
    assert run.returncode == 0, run.stderr
    expected = expected_records(shared_sim)
    want = []
    for r in expected["survey_responses"]:
        r = {k: v for k, v in r.items() if k != "user_attributes"}  # noqa: PLW2901
        if isinstance(r.get("window_size"), dict):
            r["window_size"] = {k: v for k, v in r["window_size"].items() if k != "width"}
        want.append(r)
    assert keyed("survey_responses", run.records["survey_responses"]) == keyed("survey_responses", want)
    for stream in ("surveys", "survey_questions", "survey_answers"):
        assert keyed(stream, run.records[stream]) == keyed(stream, expected[stream])


def test_flattening_flattens_every_record(shared_sim, tap):
    run = tap({**shared_sim.config(), "flattening_enabled": True, "flattening_max_depth": 1})
    assert run.returncode == 0, run.stderr
    expected = expected_records(shared_sim)
    got = keyed("survey_responses", run.records["survey_responses"])
    assert len(got) == len(expected["survey_responses"])
    for key, response in keyed("survey_responses", expected["survey_responses"]).items():
        flat = got[key]
        for name, value in response.items():
            if isinstance(value, dict):  # window_size: one column per property
                assert name not in flat
                assert {k: flat[f"{name}__{k}"] for k in value} == value
            elif isinstance(value, list):  # answers, user_attributes: JSON text
                assert json.loads(flat[name]) == value
            else:
                assert flat[name] == value
    answers = keyed("survey_answers", run.records["survey_answers"])
    for key, answer in keyed("survey_answers", expected["survey_answers"]).items():
        tags = answers[key].pop("tags")
        assert (json.loads(tags) if isinstance(tags, str) else tags) == answer.pop("tags")
        assert answers[key] == answer
