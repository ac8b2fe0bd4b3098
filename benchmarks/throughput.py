"""Throughput of a full sync against the floor of what HTTP and JSON cost.

Starts the simulator in its own process (about 60,000 responses, rate limit off),
then alternates runs: tap, floor, tap, floor, ...  The tap is the installed
``tap-hotjar`` executable with a config file, stdout to a file; the floor is
benchmarks/floor.py, which fetches exactly the same pages and writes each response
as a RECORD line.  Between runs the simulator's counters are reset, so each run's
requests are counted by the server.

    .venv/bin/python benchmarks/throughput.py            # 5 pairs, 60,000 responses
    .venv/bin/python benchmarks/throughput.py --quick    # 2 pairs, 20,000 responses

Printed per run: wall seconds, CPU seconds, responses/s, all records/s (tap).
Then medians, the per-pair ratio tap_time/floor_time and its median (the goal is
<= 1.3), the CPU-time ratio, whether both made the same response requests, and the
bound the tap's own rate limiter (tap_hotjar.http.pacing.REQUESTS_PER_SECOND, under the API's 50) puts on its wall
time: the floor does not limit itself unless given --floor-rate-limit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

from tap_hotjar.http.pacing import REQUESTS_PER_SECOND

FLOOR = str(Path(__file__).resolve().parent / "floor.py")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=5, help="tap/floor pairs (default 5)")
    p.add_argument("--sites", type=int, default=4)
    p.add_argument("--surveys-per-site", type=int, default=15)
    p.add_argument("--responses-per-survey", type=int, default=1000)
    p.add_argument(
        "--floor-rate-limit",
        type=float,
        default=0.0,
        help="make the floor keep to N requests/s too (default 0: unlimited)",
    )
    p.add_argument(
        "--tap-rate",
        type=float,
        default=REQUESTS_PER_SECOND,
        help=f"requests/s the tap allows itself, for the bound printed (default {REQUESTS_PER_SECOND})",
    )
    p.add_argument("--quick", action="store_true", help="2 pairs, 4 x 5 x 1000 = 20,000 responses")
    p.add_argument("--keep", action="store_true", help="keep the output files (prints the folder)")
    a = p.parse_args(argv)
    if a.quick:
        a.pairs, a.surveys_per_site = 2, 5

    tmp = c.workdir("throughput")
    work = Path(tmp.name)
    c.header("throughput: full sync, tap against the floor", a)
    expected = a.sites * a.surveys_per_site * a.responses_per_survey
    print(
        f"dataset: {a.sites} sites x {a.surveys_per_site} surveys x {a.responses_per_survey} "
        f"responses = {expected:,} responses; simulator rate limit off; page size 100"
    )
    print(f"floor rate limit: {a.floor_rate_limit or 'off'}")
    with c.Simulator(
        work,
        sites=a.sites,
        surveys_per_site=a.surveys_per_site,
        responses_per_survey=a.responses_per_survey,
        empty_sites=0,
        empty_surveys=0,
        rate_limit=0,
    ) as sim:
        config = sim.write_config(work / "config.json")
        tap_cmd = [c.tap_executable(), "--config", str(config)]
        floor_cmd = [c.PYTHON, FLOOR, "--config", str(config)]
        if a.floor_rate_limit:
            floor_cmd += ["--rate-limit", str(a.floor_rate_limit)]
        runs: dict[str, list[dict]] = {"tap": [], "floor": []}
        print()
        print(
            f"{'run':<9} {'wall s':>7} {'cpu s':>6} {'responses':>9} {'resp/s':>8} "
            f"{'records':>8} {'rec/s':>8} {'requests':>8} {'resp.req':>8}"
        )
        for i in range(a.pairs):
            for name, cmd in (("tap", tap_cmd), ("floor", floor_cmd)):
                sim.reset_counts()
                out, err = work / f"{name}{i}.out", work / f"{name}{i}.err"
                r = c.run_process(cmd, out, err)
                counts = sim.counts()
                if r["returncode"] != 0:
                    print(f"{name} run {i + 1} failed with exit code {r['returncode']}:")
                    print(Path(err).read_text()[-2000:])
                    return 1
                msgs = c.count_messages(out)
                r["responses"] = c.records(msgs, "survey_responses")
                r["records"] = c.records(msgs)
                r["requests"] = counts["total"]
                r["response_requests"] = counts["responses"]
                r["by_survey"] = counts["responses_by_survey"]
                r["statuses"] = counts["status"]
                runs[name].append(r)
                print(
                    f"{name} {i + 1:<5} {r['wall']:7.2f} {r['cpu']:6.2f} {r['responses']:9,} "
                    f"{r['responses'] / r['wall']:8,.0f} {r['records']:8,} "
                    f"{r['records'] / r['wall']:8,.0f} {r['requests']:8} {r['response_requests']:8}"
                )
                if not a.keep:
                    out.unlink()

    tap, floor = runs["tap"], runs["floor"]
    ratios = [t["wall"] / f["wall"] for t, f in zip(tap, floor, strict=True)]
    cpu_ratios = [t["cpu"] / f["cpu"] for t, f in zip(tap, floor, strict=True)]
    print()
    print(
        f"median tap:   {c.median([r['wall'] for r in tap]):.2f} s wall, "
        f"{c.median([r['cpu'] for r in tap]):.2f} s CPU, "
        f"{c.median([r['responses'] / r['wall'] for r in tap]):,.0f} responses/s, "
        f"{c.median([r['records'] / r['wall'] for r in tap]):,.0f} records/s "
        f"(all streams: {tap[0]['records']:,} records)"
    )
    print(
        f"median floor: {c.median([r['wall'] for r in floor]):.2f} s wall, "
        f"{c.median([r['cpu'] for r in floor]):.2f} s CPU, "
        f"{c.median([r['responses'] / r['wall'] for r in floor]):,.0f} responses/s"
    )
    print("tap/floor wall-time ratio per pair: " + ", ".join(f"{x:.2f}" for x in ratios))
    print(f"median tap/floor wall-time ratio: {c.median(ratios):.2f}   (goal <= 1.3)")
    print(f"median tap/floor CPU-time ratio:  {c.median(cpu_ratios):.2f}")
    n_req = tap[0]["requests"]
    bound = max(0.0, (n_req - a.tap_rate) / a.tap_rate)
    print(
        f"rate-limit bound: {n_req} requests at {a.tap_rate:g}/s (the tap's own limiter) take at "
        f"least {bound:.1f} s, so the best wall-time ratio a tap within the API limit can reach "
        f"against this floor is {bound / c.median([r['wall'] for r in floor]):.2f}"
        + ("" if a.floor_rate_limit else f" (try --floor-rate-limit {a.tap_rate:g})")
    )
    ok = True
    for name, rs in runs.items():
        bad = [i + 1 for i, r in enumerate(rs) if r["responses"] != expected]
        if bad:
            ok = False
            print(f"MISMATCH: {name} runs {bad} did not write {expected:,} responses")
    same = all(t["by_survey"] == f["by_survey"] for t, f in zip(tap, floor, strict=True))
    print(
        f"same response requests per survey in tap and floor runs: {'yes' if same else 'NO'} "
        f"(tap {tap[0]['response_requests']}, floor {floor[0]['response_requests']}; "
        f"total requests tap {tap[0]['requests']}, floor {floor[0]['requests']})"
    )
    non200 = {k: v for r in tap + floor for k, v in r["statuses"].items() if k != "200"}
    if non200:
        print(f"non-200 statuses seen: {non200}")
    if a.keep:
        print(f"outputs kept in {work}")
        tmp._finalizer.detach()  # type: ignore[attr-defined]
    return 0 if ok and same else 1


if __name__ == "__main__":
    sys.exit(main())
