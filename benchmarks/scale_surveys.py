"""Cost against the number of surveys: full syncs at 300, 1,200 and 3,000 surveys.

Each survey has 30 responses (one page), spread over 5 sites, every stream selected.
A tap whose cost is linear in the size of the account takes the same time per
survey at every size, and writes STATE bytes in proportion to the surveys; one
that writes every survey's bookmark after every survey writes STATE bytes that grow
with the square of the surveys (issue #10: 195 of 370 MB at 1,200 surveys).

For each size the simulator runs in its own process (no empty sites or surveys)
and the installed ``tap-hotjar`` runs with its stdout piped through a counting
reader (another process; nothing is kept). Printed per size: wall time, the tap's
CPU time (user+sys of its process), requests (counted by the simulator) and the
least time the API's 50/s allows for them, time and CPU per survey, CPU per record,
bytes written by message type (RECORD, SCHEMA, STATE, other), STATE messages, the
largest one and the final state's size, the STATE share of the bytes, peak RSS and
stderr lines. Then the growth from each size to the next: for each figure the ratio
and the exponent k in figure ~ surveys^k (1 linear, 2 quadratic; per-survey figures
0 when linear).

    .venv/bin/python benchmarks/scale_surveys.py                      # 300, 1,200, 3,000
    .venv/bin/python benchmarks/scale_surveys.py --quick              # 60, 120, 240 (< 30 s)
    .venv/bin/python benchmarks/scale_surveys.py --rate-limit 0,50    # also with the API limit enforced
    .venv/bin/python benchmarks/scale_surveys.py --json before.json

By default the simulator does not rate-limit (``--rate-limit 0``: the tap's own
cost; the tap still paces itself). ``--timeout`` (default 1800 s) stops a run that
takes too long; its row shows what the tap had written by then.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

API_LIMIT = 50.0
MB = 1e6


def run_size(a: argparse.Namespace, surveys: int, rate_limit: float, work: Path) -> dict:
    per_site = surveys // a.sites
    surveys = per_site * a.sites
    row: dict = {"surveys": surveys, "rate_limit": rate_limit, "responses_expected": surveys * a.responses_per_survey}
    with c.Simulator(
        work,
        sites=a.sites,
        surveys_per_site=per_site,
        responses_per_survey=a.responses_per_survey,
        empty_sites=0,
        empty_surveys=0,
        rate_limit=rate_limit,
    ) as sim:
        config = sim.write_config(work / "config.json")
        sim.reset_counts()
        r = c.run_counted(c.tap_command(config), work / "stderr.txt", timeout=a.timeout, last_state=True)
        counts = sim.counts()
    out = r["out"]
    b = out["bytes"]
    records = sum(out["records"].values())
    state = out.pop("last_state", None)
    final_state = len(json.dumps(state, separators=(",", ":"))) if state else 0
    row.update(
        ok=r["returncode"] == 0 and not r["timed_out"],
        status="timeout" if r["timed_out"] else ("ok" if r["returncode"] == 0 else f"exit {r['returncode']}"),
        wall=r["wall"],
        cpu=r["cpu"],
        requests=counts["total"],
        statuses=counts["status"],
        n429=counts["status"].get("429", 0),
        limit_bound_s=counts["total"] / API_LIMIT,
        wall_per_survey_ms=1000 * r["wall"] / surveys,
        cpu_per_survey_ms=1000 * r["cpu"] / surveys,
        records=records,
        records_by_stream=out["records"],
        cpu_per_record_us=1e6 * r["cpu"] / records if records else None,
        total_mb=out["total_bytes"] / MB,
        record_mb=b.get("RECORD", 0) / MB,
        schema_mb=b.get("SCHEMA", 0) / MB,
        state_mb=b.get("STATE", 0) / MB,
        other_mb=(b.get("other", 0) + b.get("partial", 0)) / MB,
        state_pct=100 * b.get("STATE", 0) / out["total_bytes"] if out["total_bytes"] else None,
        state_messages=out["state_messages"],
        state_max_kb=out["state_max_bytes"] / 1000,
        final_state_kb=final_state / 1000,
        bookmarks=len(c.survey_bookmarks(state)),
        rss_mb=r["maxrss_kb"] / 1024,
        log_lines=r["log"]["lines"],
        log=r["log"],
        output=out,
    )
    if r["timed_out"]:
        # Not every survey was read: a time per survey would flatter the run.
        row["wall_per_survey_ms"] = row["cpu_per_survey_ms"] = None
    problems = []
    if row["ok"]:
        got = out["records"].get("survey_responses", 0)
        if out["records"].get("surveys", 0) != surveys or got != row["responses_expected"]:
            problems.append(f"{out['records'].get('surveys', 0)} surveys and {got:,} responses written")
        if row["bookmarks"] != surveys:
            problems.append(f"{row['bookmarks']} bookmarks in the final state")
    elif r["timed_out"]:
        problems.append(
            f"stopped by --timeout after {a.timeout:g} s: {out['records'].get('survey_responses', 0):,} responses "
            f"and {out['state_messages']:,} STATE messages written by then"
        )
    else:
        problems.append(f"{row['status']}: {(work / 'stderr.txt').read_text()[-1500:]}")
    row["problems"] = problems
    return row


def growth(rows: list[dict]) -> list[dict]:
    """Ratios from each size to the next, and the exponent k in figure ~ surveys^k."""
    keys = ("wall", "cpu", "state_mb", "record_mb", "state_messages", "wall_per_survey_ms", "cpu_per_survey_ms")
    out = []
    for small, large in itertools.pairwise(rows):
        if not (small["ok"] and large["ok"]):
            continue
        g: dict = {"from_to": f"{small['surveys']:,} -> {large['surveys']:,}"}
        x = large["surveys"] / small["surveys"]
        g["surveys_x"] = x
        for k in keys:
            if small[k] and large[k]:
                g[f"{k}_x"] = large[k] / small[k]
                g[f"{k}_k"] = math.log(large[k] / small[k]) / math.log(x)
        out.append(g)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="300,1200,3000", help="surveys in all, one run each (default 300,1200,3000)")
    p.add_argument("--sites", type=int, default=5, help="sites the surveys are spread over (default 5)")
    p.add_argument("--responses-per-survey", type=int, default=30, help="default 30 (one page)")
    p.add_argument(
        "--rate-limit",
        default="0",
        help="simulator rate limit(s), requests/s, comma-separated; 0 = off (default 0)",
    )
    p.add_argument("--timeout", type=float, default=1800, help="seconds before a run is stopped (default 1800)")
    p.add_argument("--quick", action="store_true", help="60, 120 and 240 surveys")
    p.add_argument("--json", help="also write the figures to this JSON file")
    a = p.parse_args(argv)
    sizes = [60, 120, 240] if a.quick else c.parse_list(a.sizes, int)

    meta = c.header("scale_surveys: cost against the number of surveys", a)
    print(
        f"dataset: {', '.join(f'{n:,}' for n in sizes)} surveys x {a.responses_per_survey} responses, "
        f"over {a.sites} sites; every stream selected; page size 100"
    )
    tmp = c.workdir("scale")
    work = Path(tmp.name)
    rows: list[dict] = []
    for rate in c.parse_list(a.rate_limit):
        print(f"\nsimulator rate limit: {f'{rate:g}/s enforced' if rate else 'off'}")
        batch = []
        for n in sizes:
            row = run_size(a, n, rate, work)
            batch.append(row)
            print(
                f"  {row['surveys']:>6,} surveys: {row['status']}, {row['wall']:.1f} s wall, "
                f"{row['cpu']:.1f} s CPU, {row['total_mb']:.1f} MB written",
                flush=True,
            )
        rows += batch
        print()
        c.table(
            batch,
            [
                ("surveys", "surveys", ","),
                ("run", "status", ""),
                ("requests", "requests", ","),
                ("50/s bound s", "limit_bound_s", ".1f"),
                ("429s", "n429", "g"),
                ("wall s", "wall", ".1f"),
                ("CPU s", "cpu", ".1f"),
                ("wall ms/survey", "wall_per_survey_ms", ".1f"),
                ("CPU ms/survey", "cpu_per_survey_ms", ".1f"),
                ("records", "records", ","),
                ("CPU us/record", "cpu_per_record_us", ".0f"),
                ("peak RSS MB", "rss_mb", ".0f"),
                ("log lines", "log_lines", ","),
            ],
            "  ",
        )
        print()
        c.table(
            batch,
            [
                ("surveys", "surveys", ","),
                ("stdout MB", "total_mb", ".1f"),
                ("RECORD MB", "record_mb", ".1f"),
                ("SCHEMA MB", "schema_mb", ".3f"),
                ("STATE MB", "state_mb", ".1f"),
                ("other MB", "other_mb", ".1f"),
                ("STATE %", "state_pct", ".1f"),
                ("STATE msgs", "state_messages", ","),
                ("largest STATE kB", "state_max_kb", ".1f"),
                ("final state kB", "final_state_kb", ".1f"),
            ],
            "  ",
        )
        g = growth(batch)
        if g:
            print("\n  growth (x: ratio between sizes; k: exponent in figure ~ surveys^k, 1 = linear, 2 = quadratic)")
            c.table(
                g,
                [
                    ("surveys", "from_to", ""),
                    ("surveys x", "surveys_x", ".2f"),
                    ("STATE MB x", "state_mb_x", ".2f"),
                    ("STATE k", "state_mb_k", ".2f"),
                    ("RECORD MB x", "record_mb_x", ".2f"),
                    ("wall x", "wall_x", ".2f"),
                    ("wall k", "wall_k", ".2f"),
                    ("CPU x", "cpu_x", ".2f"),
                    ("CPU k", "cpu_k", ".2f"),
                    ("CPU/survey x", "cpu_per_survey_ms_x", ".2f"),
                    ("wall/survey x", "wall_per_survey_ms_x", ".2f"),
                ],
                "  ",
            )
        for row in batch:
            for problem in row["problems"]:
                print(f"  PROBLEM at {row['surveys']:,} surveys: {problem}")
            row["growth"] = None
        if g:
            batch[-1]["growth"] = g

    figures: dict = {}
    for row in rows:
        tag = f"rl{row['rate_limit']:g}.s{row['surveys']}"
        for k in ("wall", "cpu", "requests", "wall_per_survey_ms", "cpu_per_survey_ms", "cpu_per_record_us"):
            figures[f"{tag}.{k}"] = row[k] if row["ok"] else None
        for k in ("total_mb", "state_mb", "state_pct", "state_messages", "state_max_kb", "rss_mb", "log_lines"):
            figures[f"{tag}.{k}"] = row[k]
        for g in row.get("growth") or []:
            pair = g["from_to"].replace(",", "").replace(" -> ", "-")
            for k in ("state_mb_k", "cpu_k", "wall_k"):
                figures[f"rl{row['rate_limit']:g}.growth{pair}.{k}"] = g.get(k)
    c.finish(meta, rows, figures, a.json)
    return 0 if all(r["ok"] and not r["problems"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
