"""Requests made against the minimum, counted by the simulator.

1. A full sync (no state).  Minimum: 1 token request + the survey list pages of each
   site (max(1, ceil(surveys/100))) + for each survey max(1, ceil(responses/100))
   response pages.
2. An incremental sync from the first run's final STATE with nothing new.  Minimum:
   1 token request + the survey list pages + 1 response page per survey.

The dataset has a spread of survey sizes (0 to 350 responses; three surveys are
topped up to exact multiples of 100 and one to 100k + 1, the page-boundary cases),
one empty survey per site and one empty site.

    .venv/bin/python benchmarks/requests_count.py
    .venv/bin/python benchmarks/requests_count.py --quick

Prints, for each sync: requests made (by endpoint), the minimum, made/minimum (goal:
exactly 1.00), and which surveys got more response pages than needed.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

PAGE = 100


def pages(n: int) -> int:
    return max(1, math.ceil(n / PAGE))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sites", type=int, default=3)
    p.add_argument("--surveys-per-site", type=int, default=12)
    p.add_argument("--responses-per-survey", default="0,350", help="N or MIN,MAX (default 0,350)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="2 sites x 6 surveys")
    a = p.parse_args(argv)
    if a.quick:
        a.sites, a.surveys_per_site = 2, 6

    tmp = c.workdir("requests")
    work = Path(tmp.name)
    c.header("requests_count: requests made against the minimum", a)
    rps = a.responses_per_survey
    rps = tuple(int(x) for x in rps.split(",")) if "," in rps else int(rps)
    # In this process: it only waits for the tap, and the request log is needed.
    with c.in_process_simulator(
        seed=a.seed,
        sites=a.sites,
        surveys_per_site=a.surveys_per_site,
        responses_per_survey=rps,
        empty_sites=1,
        empty_surveys=1,
        rate_limit=0,
    ) as sim:
        # Top a few surveys up to exact multiples of 100 (and one to 100k + 1), the
        # page-boundary cases where an extra empty page is easiest to request.
        truth = sim.ground_truth()
        topped = 0
        for site_id, site in truth["sites"].items():
            for survey in site["surveys"]:
                n = len(site["responses"][survey["id"]])
                if n and topped < 4:
                    target = (n // PAGE + 1) * PAGE + (1 if topped == 3 else 0)
                    sim.add_responses(int(site_id), survey["id"], target - n)
                    topped += 1
        truth = sim.ground_truth()
        sizes: dict[str, int] = {}
        list_pages = 0
        for site in truth["sites"].values():
            list_pages += pages(len(site["surveys"]))
            for survey in site["surveys"]:
                sizes[survey["id"]] = len(site["responses"][survey["id"]])
        n_responses = sum(sizes.values())
        print(
            f"dataset: {len(truth['sites'])} sites ({a.sites} with surveys, 1 empty), "
            f"{len(sizes)} surveys ({sum(1 for n in sizes.values() if n == 0)} empty), "
            f"{n_responses:,} responses; sizes: {sorted(sizes.values())}"
        )
        config = work / "config.json"
        config.write_text(json.dumps(sim.config()))
        tap = c.tap_executable()

        minimum_full = {"token": 1, "surveys_list": list_pages, "responses": sum(pages(n) for n in sizes.values())}
        minimum_incr = {"token": 1, "surveys_list": list_pages, "responses": len(sizes)}
        need_full = {sid: pages(n) for sid, n in sizes.items()}
        need_incr = dict.fromkeys(sizes, 1)

        ok = True
        state_path = work / "state.json"
        for label, extra, minimum, need in (
            ("full sync", [], minimum_full, need_full),
            ("incremental sync, nothing new", ["--state", str(state_path)], minimum_incr, need_incr),
        ):
            sim.reset_counts()
            out, err = work / "out.jsonl", work / "err.txt"
            r = c.run_process([tap, "--config", str(config), *extra], out, err)
            if r["returncode"] != 0:
                print(f"{label}: tap failed ({r['returncode']}):\n{err.read_text()[-2000:]}")
                return 1
            counts = sim.counts()
            msgs = c.count_messages(out)
            made = {k: counts[k] for k in ("token", "surveys_list", "survey_get", "responses", "user_lookup")}
            made_total = counts["total"]
            min_total = sum(minimum.values())
            print()
            print(f"{label}: {c.records(msgs, 'survey_responses'):,} responses emitted, {r['wall']:.1f} s")
            print(f"  made:    {made_total:5}  {json.dumps(made)}  statuses {counts['status']}")
            print(f"  minimum: {min_total:5}  {json.dumps(minimum)}")
            print(f"  made/minimum: {made_total / min_total:.3f}")
            by = counts["responses_by_survey"]
            extra_pages = {sid: (by.get(sid, 0), n) for sid, n in need.items() if by.get(sid, 0) != n}
            if extra_pages:
                ok = False
                print(f"  surveys whose response pages differ from the minimum (made, minimum): {len(extra_pages)}")
                for sid, (m, n) in list(extra_pages.items())[:10]:
                    print(f"    {sid}: {m} vs {n} ({sizes[sid]} responses)")
            lists = collections.Counter(path for _, _, path, _, _ in sim.requests_log if path.endswith("/surveys"))
            need_lists = {
                f"/v1/sites/{sid}/surveys": pages(len(site["surveys"])) for sid, site in truth["sites"].items()
            }
            for path, n in sorted(need_lists.items()):
                if lists.get(path, 0) != n:
                    print(f"  survey list pages of {path}: {lists.get(path, 0)} made, {n} needed")
            if made_total != min_total:
                ok = False
            state = c.last_state(out)
            if label == "full sync":
                state_path.write_text(json.dumps(state))
                marks = c.survey_bookmarks(state)
                print(
                    f"  final state: {len(marks)} survey bookmarks "
                    f"({sum(1 for n in sizes.values() if n)} non-empty surveys), "
                    f"{len(json.dumps(state)):,} bytes"
                )
    print()
    print(
        "result: requests exactly the minimum in both syncs"
        if ok
        else "result: requests NOT at the minimum (see above)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
