"""Use of the API's rate limit with no network latency: how close to 50 requests/s.

With no latency a tap is held back only by its own pacing and its own CPU: at
50/s it has 20 ms of one core per request (for a page of 100 responses and their
answers). The simulator enforces the documented limit (429 + Retry-After past 50
requests in any one second). Runs, as SURVEYSxRESPONSES[:streams] or a named shape
(``_common.SHAPES``) [:streams]: issue #20's shape (``issue20``: 1 site, 20 surveys x
3,000 responses, exactly 4 answers each) with every stream selected, 20 surveys x
3,000 responses (30 pages each, 4 sites) with every stream selected, the same with
only surveys and survey_responses selected, and many small surveys, 600 x 30 (one
page each), every stream.

The simulator runs in threads of this process, for its request log (arrival
times): this process only waits for the tap, whose stdout goes to the counting
reader (another process).

Printed per run: requests, the least time the limit allows for them and the tap's
wall and CPU time; requests/s over the tap's wall time and as the server saw them:
first to last arrival, the median and the lowest count over whole seconds from the
first arrival (sustained, or in bursts), each as % of the limit; the busiest
one-second window (sliding, arrival times, token and 429s included), seconds over
the limit, 429s; CPU per record and CPU as % of wall (near 100: the tap's CPU, not
the limit, sets the pace).

    .venv/bin/python benchmarks/limit_use.py
    .venv/bin/python benchmarks/limit_use.py --quick        # 20 x 600 and 120 x 30 (< 30 s)
    .venv/bin/python benchmarks/limit_use.py --runs 1200x30 --json after.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

DEFAULT_RUNS = "issue20,20x3000,20x3000:surveys+survey_responses,600x30"


def parse_run(text: str, sites: int) -> tuple[tuple[int, int, int, int | None], tuple[str, ...]]:
    """((sites, surveys, responses, answers per response), streams) of a run spec."""
    shape, _, streams = text.partition(":")
    if shape in c.SHAPES:
        named = c.SHAPES[shape]
        dataset = (named["sites"], named["surveys"], named["responses_per_survey"], named["answers_per_response"])
    else:
        surveys, _, responses = shape.lower().partition("x")
        dataset = (min(sites, int(surveys)), int(surveys), int(responses), None)
    return dataset, c.streams_arg(streams or "all")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--runs",
        default=DEFAULT_RUNS,
        help=f"SURVEYSxRESPONSES[:streams], comma-separated; streams 'all' or joined with '+' (default {DEFAULT_RUNS})",
    )
    p.add_argument("--sites", type=int, default=4, help="sites the surveys are spread over (at most; default 4)")
    p.add_argument("--rate-limit", type=float, default=50, help="the API's limit, enforced (default 50)")
    p.add_argument("--timeout", type=float, default=900, help="seconds before a run is stopped (default 900)")
    p.add_argument("--quick", action="store_true", help="20 x 600 (all, and surveys+survey_responses) and 120 x 30")
    p.add_argument("--json", help="also write the figures to this JSON file")
    a = p.parse_args(argv)
    if a.quick:
        a.runs = "20x600,20x600:surveys+survey_responses,120x30"
    specs = [s.strip() for s in a.runs.split(",") if s.strip()]
    # "a,b" inside a stream list would split a run: streams are joined with '+' here.
    runs = [parse_run(s, a.sites) for s in specs]

    meta = c.header("limit_use: use of the API's rate limit with no latency", a)
    print(f"rate limit {a.rate_limit:g}/s enforced (429 + Retry-After); no latency; page size 100")
    tmp = c.workdir("limit")
    work = Path(tmp.name)
    rows: list[dict] = []
    datasets: dict[tuple[int, int, int, int | None], list[tuple[int, tuple[str, ...]]]] = {}
    for i, (dataset, streams) in enumerate(runs):
        datasets.setdefault(dataset, []).append((i, streams))
    for (sites, surveys, responses, answers), selections in datasets.items():
        per_site = surveys // sites
        with c.in_process_simulator(
            sites=sites,
            surveys_per_site=per_site,
            responses_per_survey=responses,
            answers_per_response=answers,
            rate_limit=a.rate_limit,
        ) as sim:
            config = work / "config.json"
            config.write_text(json.dumps(sim.config()))
            for i, streams in selections:
                cmd = c.tap_command(config, c.write_catalog(work / "catalog.json", config, streams))
                time.sleep(1.1)  # the server's one-second window forgets the previous run
                sim.reset_counts()
                r = c.run_counted(cmd, work / "stderr.txt", timeout=a.timeout)
                counts = sim.counts()
                stats = c.arrival_stats(c.arrival_times(sim), a.rate_limit)
                ok = r["returncode"] == 0 and not r["timed_out"]
                expected = sites * per_site * responses
                got = r["out"]["records"].get("survey_responses", 0) if "survey_responses" in streams else None
                records = sum(r["out"]["records"].values())
                limit = a.rate_limit
                row = {
                    "order": i,
                    "run": f"{sites * per_site}x{responses}"
                    + (f" ({sites} site{'s' if sites > 1 else ''}, {answers} answers)" if answers is not None else ""),
                    "streams": c.streams_label(streams),
                    "status": "timeout" if r["timed_out"] else ("ok" if ok else f"exit {r['returncode']}"),
                    "requests": counts["total"],
                    "limit_bound_s": counts["total"] / limit,
                    "wall": r["wall"],
                    "cpu": r["cpu"],
                    "cpu_pct_of_wall": 100 * r["cpu"] / r["wall"],
                    "rate_wall": counts["total"] / r["wall"],
                    "pct_wall": 100 * counts["total"] / r["wall"] / limit,
                    "rate_first_last": stats.get("rate_first_last"),
                    "pct_first_last": 100 * stats["rate_first_last"] / limit if stats.get("rate_first_last") else None,
                    "median_1s": stats.get("median_1s"),
                    "pct_median": 100 * stats["median_1s"] / limit if stats.get("median_1s") else None,
                    "min_1s": stats.get("min_1s"),
                    "busiest_1s": stats.get("busiest_1s"),
                    "seconds_over_limit": stats.get("seconds_over_limit"),
                    "per_second": stats.get("per_second"),
                    "n429": counts["status"].get("429", 0),
                    "statuses": counts["status"],
                    "records": records,
                    "records_by_stream": r["out"]["records"],
                    "cpu_per_record_us": 1e6 * r["cpu"] / records if records else None,
                    "rss_mb": r["maxrss_kb"] / 1024,
                    "complete": "yes" if got in (None, expected) and ok else f"{got or 0:,}/{expected:,}",
                    "log": r["log"],
                }
                row["ok"] = ok and row["complete"] == "yes"
                if not ok:
                    row["error"] = (work / "stderr.txt").read_text()[-1500:]
                rows.append(row)
                print(
                    f"  {row['run']} {row['streams']}: {row['status']}, {row['requests']} requests in "
                    f"{row['wall']:.1f} s, {row['rate_first_last'] or 0:.1f}/s first to last",
                    flush=True,
                )
    rows.sort(key=lambda r: r["order"])
    print()
    c.table(
        rows,
        [
            ("surveys x responses", "run", ""),
            ("streams", "streams", ""),
            ("requests", "requests", ","),
            ("50/s bound s", "limit_bound_s", ".1f"),
            ("wall s", "wall", ".1f"),
            ("CPU s", "cpu", ".1f"),
            ("CPU % wall", "cpu_pct_of_wall", ".0f"),
            ("req/s wall", "rate_wall", ".1f"),
            ("%", "pct_wall", ".0f"),
            ("req/s first-last", "rate_first_last", ".1f"),
            ("%", "pct_first_last", ".0f"),
            ("median/s", "median_1s", "g"),
            ("%", "pct_median", ".0f"),
            ("lowest/s", "min_1s", "g"),
            ("busiest 1 s", "busiest_1s", "g"),
            ("s over limit", "seconds_over_limit", "g"),
            ("429s", "n429", "g"),
            ("CPU us/record", "cpu_per_record_us", ".0f"),
            ("all responses", "complete", ""),
        ],
    )
    figures: dict = {}
    for r in rows:
        tag = f"{r['run']}.{r['streams']}"
        for k in ("rate_first_last", "pct_first_last", "median_1s", "busiest_1s", "n429", "cpu", "cpu_per_record_us"):
            figures[f"{tag}.{k}"] = r[k]
        if r.get("error"):
            print(f"PROBLEM at {tag}: {r['error']}")
    c.finish(meta, rows, figures, a.json)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
