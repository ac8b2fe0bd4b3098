"""Request rate under network latency: 50, 250 and 500 ms per request, API limit enforced.

The simulator adds the latency to every request (token included) and answers 429
past 50 requests in any one second. A tap that waits for each page before asking
for the next makes at most 1/latency requests per second (2/s at 500 ms); reaching
the limit takes about limit x latency requests in flight (25 at 500 ms). Shapes, as
surveys x pages per survey (100 responses a page, every stream selected): 24 x 3,
24 x 10 (most requests are follow-up pages of a survey, which only come one after
another) and 96 x 3, over 2 sites.

The simulator runs in threads of this process, for its request log (arrival
times): this process only waits for the tap, whose stdout goes to the counting
reader (another process). One simulator per shape; between runs its counters are
reset and its rate-limit window left to empty.

Printed per latency and shape: requests, requests/s over the tap's wall time and
from the first to the last request as the server saw them, both as % of the limit,
the median and the lowest requests in a second (whole seconds from the first
arrival: sustained or in bursts), the busiest one-second window (sliding, over
arrival times, token requests and 429s included), 429s, the tap's peak RSS and CPU,
and whether every response was written; and the share of what is possible (issue #20):
the least time any client could take from the first request to the last, max(requests
/ limit, longest chain x latency), over the time the tap took. The longest chain is
the longest run of requests that can only go one after another: a site's survey
listing pages, then one survey's response pages (each page's cursor comes from the
one before); the token request before them is left out, as issue #20 counts it. Then peak RSS across shapes (bounded and
flat: the same at every shape; peak RSS varies between identical runs, which
``--repeat`` shows). With ``--repeat`` the JSON figures are medians of the rates
and the worst busiest window, 429 count and peak RSS.

    .venv/bin/python benchmarks/latency_sweep.py                 # 3 latencies x 3 shapes
    .venv/bin/python benchmarks/latency_sweep.py --quick         # 50 and 250 ms, 24 x 3 (< 30 s)
    .venv/bin/python benchmarks/latency_sweep.py --latencies 250 --shapes 48x5 --json after.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

PAGE = 100


def parse_shape(text: str) -> tuple[int, int]:
    surveys, _, pages = text.lower().partition("x")
    return int(surveys), int(pages)


def longest_chain(log: list[tuple]) -> int:
    """Requests that had to go one after another: a site's listing pages, then a survey's response pages."""
    listings: dict[str, int] = {}
    responses: dict[tuple[str, str], int] = {}
    for _, method, path, *_ in log:
        parts = path.strip("/").split("/")  # v1 sites SITE surveys [SURVEY responses]
        if method != "GET" or len(parts) < 4 or parts[:2] != ["v1", "sites"] or parts[3] != "surveys":
            continue
        if len(parts) == 4:
            listings[parts[2]] = listings.get(parts[2], 0) + 1
        elif len(parts) == 6 and parts[5] == "responses":
            key = (parts[2], parts[4])
            responses[key] = responses.get(key, 0) + 1
    chains = [listings.get(site, 0) + n for (site, _), n in responses.items()]
    return max(chains, default=max(listings.values(), default=0))


def run_one(sim: object, a: argparse.Namespace, latency_ms: float, shape: str, cmd: list[str], work: Path) -> dict:
    surveys, pages = parse_shape(shape)
    sim.set_faults(latency=latency_ms / 1000)  # type: ignore[attr-defined]
    time.sleep(1.1)  # the server's one-second window forgets the previous run
    sim.reset_counts()  # type: ignore[attr-defined]
    r = c.run_counted(cmd, work / "stderr.txt", timeout=a.timeout)
    counts = sim.counts()  # type: ignore[attr-defined]
    log = sim.requests_log  # type: ignore[attr-defined]
    stats = c.arrival_stats(sorted(entry[0] for entry in log), a.rate_limit)
    chain = longest_chain(log)
    expected = (surveys // a.sites) * a.sites * pages * PAGE
    got = r["out"]["records"].get("survey_responses", 0)
    ok = r["returncode"] == 0 and not r["timed_out"]
    row = {
        "latency_ms": latency_ms,
        "shape": shape,
        "surveys": surveys,
        "pages_per_survey": pages,
        "status": "timeout" if r["timed_out"] else ("ok" if ok else f"exit {r['returncode']}"),
        "requests": counts["total"],
        "n429": counts["status"].get("429", 0),
        "statuses": counts["status"],
        "wall": r["wall"],
        "cpu": r["cpu"],
        "rate_wall": counts["total"] / r["wall"],
        "rate_first_last": stats.get("rate_first_last"),
        "median_1s": stats.get("median_1s"),
        "min_1s": stats.get("min_1s"),
        "busiest_1s": stats.get("busiest_1s"),
        "seconds_over_limit": stats.get("seconds_over_limit"),
        "per_second": stats.get("per_second"),
        "span_s": stats.get("span_s"),
        "rss_mb": r["maxrss_kb"] / 1024,
        "responses": got,
        "responses_expected": expected,
        "complete": "yes" if ok and got == expected else f"{got:,}/{expected:,}",
        "records": r["out"]["records"],
        "log": r["log"],
    }
    limit = a.rate_limit
    row["pct_wall"] = 100 * row["rate_wall"] / limit
    row["pct_first_last"] = 100 * row["rate_first_last"] / limit if row["rate_first_last"] else None
    row["chain"] = chain
    row["ideal_s"] = max(row["requests"] / limit, chain * latency_ms / 1000)
    row["of_possible"] = row["ideal_s"] / row["span_s"] if row["span_s"] else None
    row["ok"] = ok and got == expected
    if not ok:
        row["error"] = (work / "stderr.txt").read_text()[-1500:]
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--latencies", default="50,250,500", help="ms per request, comma-separated (default 50,250,500)")
    p.add_argument(
        "--shapes", default="24x3,24x10,96x3", help="SURVEYSxPAGES, comma-separated (default 24x3,24x10,96x3)"
    )
    p.add_argument("--sites", type=int, default=2, help="sites the surveys are spread over (default 2)")
    p.add_argument("--rate-limit", type=float, default=50, help="the API's limit, enforced (default 50)")
    p.add_argument(
        "--streams",
        type=c.streams_arg,
        default=c.STREAMS,
        help="'all' (default) or names, e.g. surveys,survey_responses",
    )
    p.add_argument("--repeat", type=int, default=1, help="runs of each latency and shape (default 1)")
    p.add_argument("--timeout", type=float, default=900, help="seconds before a run is stopped (default 900)")
    p.add_argument("--quick", action="store_true", help="50 and 250 ms, 24 x 3 only")
    p.add_argument("--json", help="also write the figures to this JSON file")
    a = p.parse_args(argv)
    if a.quick:
        a.latencies, a.shapes = "50,250", "24x3"
    latencies = c.parse_list(a.latencies)
    shapes = [s.strip() for s in a.shapes.split(",") if s.strip()]

    meta = c.header("latency_sweep: request rate under network latency, API limit enforced", a)
    print(
        f"dataset: shapes {', '.join(shapes)} (surveys x pages of {PAGE} responses) over {a.sites} sites; "
        f"latency {', '.join(f'{x:g}' for x in latencies)} ms per request; rate limit {a.rate_limit:g}/s "
        f"enforced (429 + Retry-After); streams: {c.streams_label(a.streams)}"
    )
    tmp = c.workdir("latency")
    work = Path(tmp.name)
    rows: list[dict] = []
    for shape in shapes:
        surveys, pages = parse_shape(shape)
        with c.in_process_simulator(
            sites=a.sites,
            surveys_per_site=surveys // a.sites,
            responses_per_survey=pages * PAGE,
            rate_limit=a.rate_limit,
        ) as sim:
            config = work / "config.json"
            config.write_text(json.dumps(sim.config()))
            cmd = c.tap_command(config, c.write_catalog(work / "catalog.json", config, a.streams))
            for repeat in range(a.repeat):
                for latency in latencies:
                    row = run_one(sim, a, latency, shape, cmd, work)
                    row["repeat"] = repeat + 1
                    rows.append(row)
                    print(
                        f"  {shape:>6} at {latency:g} ms: {row['status']}, {row['requests']} requests in "
                        f"{row['wall']:.1f} s, {row['rate_first_last'] or 0:.1f}/s first to last, "
                        f"{row['of_possible'] or 0:.2f} of possible",
                        flush=True,
                    )
    rows.sort(key=lambda r: (r["latency_ms"], shapes.index(r["shape"]), r["repeat"]))
    print()
    c.table(
        rows,
        [
            ("latency ms", "latency_ms", "g"),
            ("surveys x pages", "shape", ""),
            *([("run", "repeat", "g")] if a.repeat > 1 else []),
            ("requests", "requests", ","),
            ("wall s", "wall", ".1f"),
            ("req/s wall", "rate_wall", ".1f"),
            ("% limit", "pct_wall", ".0f"),
            ("req/s first-last", "rate_first_last", ".1f"),
            ("% limit", "pct_first_last", ".0f"),
            ("median/s", "median_1s", "g"),
            ("lowest/s", "min_1s", "g"),
            ("busiest 1 s", "busiest_1s", "g"),
            ("429s", "n429", "g"),
            ("first-last s", "span_s", ".2f"),
            ("chain", "chain", "g"),
            ("possible s", "ideal_s", ".2f"),
            ("of possible", "of_possible", ".2f"),
            ("peak RSS MB", "rss_mb", ".0f"),
            ("CPU s", "cpu", ".1f"),
            ("all responses", "complete", ""),
        ],
    )
    print()
    # Peak RSS of a threaded tap differs between identical runs: --repeat shows by how much.
    print("peak RSS by shape (bounded and flat: the same at every shape; max/min near 1):")
    figures: dict = {}
    for latency in latencies:
        rss = {
            shape: [r["rss_mb"] for r in rows if r["latency_ms"] == latency and r["shape"] == shape] for shape in shapes
        }
        allv = [x for v in rss.values() for x in v]
        text = ", ".join(f"{shape} {'/'.join(f'{x:.0f}' for x in v)}" for shape, v in rss.items())
        print(f"  {latency:g} ms: {text} MB; max/min {max(allv) / min(allv):.2f}")
        figures[f"lat{latency:g}.rss_max_over_min"] = max(allv) / min(allv)
    for latency in latencies:
        for shape in shapes:
            mine = [r for r in rows if r["latency_ms"] == latency and r["shape"] == shape]
            tag = f"lat{latency:g}.{shape}"
            # Medians over --repeat runs (the one run by default); worst case for the limits.
            for k in ("rate_wall", "rate_first_last", "pct_first_last", "median_1s", "cpu", "of_possible"):
                values = [r[k] for r in mine if r[k] is not None]
                figures[f"{tag}.{k}"] = c.median(values) if values else None
            for k in ("busiest_1s", "n429", "rss_mb"):
                values = [r[k] for r in mine if r[k] is not None]
                figures[f"{tag}.{k}"] = max(values) if values else None
            for r in mine:
                if r.get("error"):
                    print(f"PROBLEM at {tag}: {r['error']}")
    c.finish(meta, rows, figures, a.json)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
