"""singer-sdk's metrics, as users watch them in Meltano's logs, are complete for every stream.

Every request goes through the SDK's request path and every record through its record
path, so `http_request_count`, `http_request_duration`, `record_count` and
`sync_duration` add up to what was really requested and written.
"""

from __future__ import annotations

import collections
import json

STREAMS = ("surveys", "survey_questions", "survey_responses", "survey_answers")
REQUESTING = ("surveys", "survey_responses")


def metric_points(stderr: str) -> list[dict]:
    return [json.loads(line.split("METRIC: ", 1)[1]) for line in stderr.splitlines() if "METRIC: " in line]


def test_metrics_of_a_run_add_up_to_its_records_and_requests(shared_sim, tap):
    shared_sim.reset_counts()
    run = tap(shared_sim.config(page_size=25))
    assert run.returncode == 0, run.stderr[-2000:]
    points = metric_points(run.stderr)
    by_metric: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
    for point in points:
        by_metric[(point["metric"], point["tags"]["stream"])].append(point)

    for stream in STREAMS:
        written = len(run.records[stream])
        assert written > 0, stream
        counted = sum(p["value"] for p in by_metric[("record_count", stream)])
        assert counted == written, (stream, counted, written)
        timers = by_metric[("sync_duration", stream)]
        assert timers and all(p["tags"]["status"] == "succeeded" for p in timers), stream

    counts = shared_sim.counts()
    made = {"surveys": counts["surveys_list"], "survey_responses": counts["responses"]}
    for stream in REQUESTING:
        requests = sum(p["value"] for p in by_metric[("http_request_count", stream)])
        durations = by_metric[("http_request_duration", stream)]
        assert requests == made[stream] == len(durations), (stream, requests, made[stream], len(durations))
        assert all(p["tags"]["http_status_code"] == 200 for p in durations)
    # Each survey's requests are counted with the survey as context, not just the stream.
    counted = by_metric[("http_request_count", "survey_responses")]
    contexts = {(p["tags"]["context"]["site_id"], p["tags"]["context"]["survey_id"]) for p in counted}
    assert contexts == {(r["site_id"], r["id"]) for r in run.records["surveys"]}
