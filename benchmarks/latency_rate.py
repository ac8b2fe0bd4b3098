"""Latency-bound request rate: 50 ms per request, API limit 50 requests/s enforced.

The simulator adds 50 ms to every request and answers 429 past 50 requests in any
one second.  A tap that waits for each page before asking for the next can make at
most about 20 requests/s here whatever its CPU cost; reaching 40+ needs several
surveys' requests in flight.  The tap (installed ``tap-hotjar``, separate process)
runs a full sync of 2 sites x 12 surveys x 300 responses (page size 100: 3 pages per
survey), then of 2 x 12 x 1,000 (10 pages per survey: here most requests are
follow-up pages, which prefetching only first pages does not overlap); for each run
this script reports:

* requests/s: total API requests / wall time of the tap process, and over the span
  from the first to the last request the simulator saw (no interpreter start-up);
* the busiest one-second window (simulator's ``max_requests_in_any_1s_window``) and
  requests per second of the run, second by second;
* 429s;
* correctness: every response and answer delivered exactly once (duplicates only at
  ties with a bookmark, which the contract allows), final bookmark = newest response
  of each survey, every RECORD after its stream's SCHEMA, and interrupt-safety: at
  every STATE message, every response older than a survey's bookmark was already
  written (a run killed there and resumed from that STATE would lose nothing).

The simulator runs in threads of this process: here the benchmark process only waits
for the tap, and it needs the simulator's request log.

    .venv/bin/python benchmarks/latency_rate.py
    .venv/bin/python benchmarks/latency_rate.py --quick    # only 2 x 12 x 300
    .venv/bin/python benchmarks/latency_rate.py --responses-per-survey 300

Goal: >= 40 requests/s, never more than 50 in any second, no 429s, nothing lost.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

if TYPE_CHECKING:
    import datetime


def check_output(path: Path, truth: dict) -> list[str]:
    """Problems with the Singer output against the simulator's ground truth."""
    problems: list[str] = []
    instants: dict[str, dict[str, datetime.datetime]] = {}  # survey -> response id -> instant
    answers_expected = 0
    for site in truth["sites"].values():
        for survey in site["surveys"]:
            rs = site["responses"][survey["id"]]
            instants[survey["id"]] = {r["id"]: c.parse_instant(r["created_time"]) for r in rs}
            answers_expected += sum(len(r.get("answers") or []) for r in rs)
    survey_of = {rid: sid for sid, rs in instants.items() for rid in rs}
    emitted: dict[str, set] = collections.defaultdict(set)
    seen_counts: collections.Counter = collections.Counter()
    answer_keys: collections.Counter = collections.Counter()
    schemas: set[str] = set()
    final_state = None
    unsafe = 0
    n_states = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            msg = json.loads(line)
            typ = msg.get("type")
            if typ == "SCHEMA":
                schemas.add(msg["stream"])
            elif typ == "RECORD":
                stream = msg["stream"]
                if stream not in schemas:
                    problems.append(f"RECORD of {stream} before its SCHEMA")
                rec = msg["record"]
                if stream == "survey_responses":
                    seen_counts[rec["id"]] += 1
                    emitted[rec.get("survey_id") or survey_of.get(rec["id"], "?")].add(rec["id"])
                elif stream == "survey_answers":
                    answer_keys[(rec["response_id"], rec["position"])] += 1
            elif typ == "STATE":
                n_states += 1
                final_state = msg["value"]
                for sid, mark in c.survey_bookmarks(final_state).items():
                    b = c.parse_instant(mark)
                    missing = [rid for rid, t in instants.get(sid, {}).items() if t < b and rid not in emitted[sid]]
                    if missing:
                        unsafe += 1
                        if unsafe <= 3:
                            problems.append(
                                f"STATE #{n_states}: bookmark {mark} for {sid} but "
                                f"{len(missing)} older responses not yet written"
                            )
    all_ids = set(survey_of)
    got = set(seen_counts)
    if all_ids - got:
        problems.append(f"{len(all_ids - got)} responses never written")
    if got - all_ids:
        problems.append(f"{len(got - all_ids)} responses written that the API does not have")
    dups = {rid: n for rid, n in seen_counts.items() if n > 1}
    if dups:
        problems.append(f"{len(dups)} responses written more than once")
    if len(answer_keys) != answers_expected:
        problems.append(f"{len(answer_keys)} distinct answers written, {answers_expected} expected")
    if any(n > 1 for n in answer_keys.values()):
        problems.append("some (response_id, position) answers written more than once")
    marks = c.survey_bookmarks(final_state)
    wrong = 0
    for sid, rs in instants.items():
        if not rs:
            continue
        newest = max(rs.values())
        if sid not in marks or c.parse_instant(marks[sid]) != newest:
            wrong += 1
            if wrong <= 3:
                problems.append(f"final bookmark of {sid} is {marks.get(sid)}, newest response {newest}")
    if unsafe:
        problems.append(f"{unsafe} bookmark(s) in STATE messages ahead of written responses")
    check_output.summary = (  # type: ignore[attr-defined]
        f"{len(got):,}/{len(all_ids):,} responses, {len(answer_keys):,}/{answers_expected:,} answers, "
        f"{sum(1 for rs in instants.values() if rs) - wrong}/{sum(1 for rs in instants.values() if rs)} "
        f"final bookmarks correct, {n_states} STATE messages checked for interrupt-safety"
    )
    return problems


def run_one(a: argparse.Namespace, per_survey: int, work: Path) -> tuple[bool, bool]:
    """One tap run against one dataset: (goal met, output correct)."""
    n = a.sites * a.surveys_per_site * per_survey
    print(
        f"dataset: {a.sites} sites x {a.surveys_per_site} surveys x {per_survey} "
        f"responses = {n:,} ({-(-per_survey // 100)} pages per survey); latency "
        f"{a.latency * 1000:.0f} ms per request; rate limit {a.rate_limit:g}/s enforced "
        f"(429 + Retry-After)"
    )
    with c.in_process_simulator(
        sites=a.sites,
        surveys_per_site=a.surveys_per_site,
        responses_per_survey=per_survey,
        empty_sites=0,
        empty_surveys=0,
        rate_limit=a.rate_limit,
        latency=a.latency,
    ) as sim:
        truth = sim.ground_truth()
        config = work / "config.json"
        config.write_text(json.dumps(sim.config()))
        out, err = work / "out.jsonl", work / "err.txt"
        sim.reset_counts()
        r = c.run_process([c.tap_executable(), "--config", str(config)], out, err)
        counts = sim.counts()
        stats = c.arrival_stats(c.arrival_times(sim), a.rate_limit)
    if r["returncode"] != 0:
        print(f"tap failed ({r['returncode']}):\n{err.read_text()[-2000:]}")
        return False, False
    total = counts["total"]
    span, rate, per_second = stats["span_s"], stats["rate_first_last"], stats["per_second"]
    n429 = counts["status"].get("429", 0)
    print(
        f"  tap wall time: {r['wall']:.2f} s (CPU {r['cpu']:.2f} s); API requests: {total} "
        f"({json.dumps({k: counts[k] for k in ('token', 'surveys_list', 'responses')})})"
    )
    print(f"  requests/s over the tap's wall time:            {total / r['wall']:.1f}")
    print(f"  requests/s from first to last request ({span:.2f} s): {rate:.1f}")
    print(f"  busiest 1 s window (simulator):                 {counts['max_requests_in_any_1s_window']}")
    print("  requests in each second of the run: " + " ".join(map(str, per_second)))
    print(f"  HTTP statuses: {counts['status']}; 429s: {n429}")
    problems = check_output(out, truth)
    print(f"  output: {check_output.summary}")  # type: ignore[attr-defined]
    for line in problems:
        print(f"  PROBLEM: {line}")
    goal = (
        rate >= 0.8 * a.rate_limit
        and counts["max_requests_in_any_1s_window"] <= a.rate_limit
        and not n429
        and not problems
    )
    print(
        f"  result: {'goal met' if goal else 'goal NOT met'} (>= {0.8 * a.rate_limit:g} "
        f"requests/s, <= {a.rate_limit:g} in any second, no 429s, nothing lost)"
    )
    return goal, not problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sites", type=int, default=2)
    p.add_argument("--surveys-per-site", type=int, default=12)
    p.add_argument(
        "--responses-per-survey",
        default="300,1000",
        help="comma-separated sizes, one run each (default 300,1000: 3 and 10 pages per survey)",
    )
    p.add_argument("--latency", type=float, default=0.05, help="seconds added per request (default 0.05)")
    p.add_argument("--rate-limit", type=float, default=50, help="API limit, requests/s (default 50)")
    p.add_argument("--quick", action="store_true", help="only 2 x 12 x 300")
    a = p.parse_args(argv)
    sizes = [300] if a.quick else [int(x) for x in a.responses_per_survey.split(",")]

    tmp = c.workdir("latency")
    work = Path(tmp.name)
    c.header("latency_rate: request rate at 50 ms latency, API limit enforced, and correctness", a)
    correct = True
    for per_survey in sizes:
        print()
        _, ok = run_one(a, per_survey, work)
        correct = correct and ok
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
