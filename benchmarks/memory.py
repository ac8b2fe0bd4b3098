"""Peak RSS of the tap process at about 6,000 and at about 60,000 responses.

Same surveys both times, only the number of responses per survey changes, so any
growth is memory held per response.  Two shapes: 4 sites x 15 surveys with 100, then
1,000 responses each (surveys of 1 and 10 pages), and 4 sites x 150 surveys with 10,
then 100 responses each (one page per survey: whatever reads ahead across surveys
shows here).  The tap is the
installed ``tap-hotjar`` executable, stdout to a file; peak RSS is measured by
``/usr/bin/time -v`` when present, else by wait4() on the child.  For reference it
also measures ``tap-hotjar --about`` (imports only).

    .venv/bin/python benchmarks/memory.py
    .venv/bin/python benchmarks/memory.py --quick     # 600 and 6,000 responses

Each size runs --repeat times (default 3); the ratio is of the medians.
Goal: peak RSS at 60,000 responses within 10% of that at 6,000 (ratio <= 1.10).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

TIME = "/usr/bin/time"


def peak_rss(cmd: list[str], out: Path, err: Path) -> tuple[int, dict]:
    """(peak RSS in KiB, run info) of ``cmd``."""
    if os.access(TIME, os.X_OK):
        timing = err.with_suffix(".time")
        r = c.run_process([TIME, "-v", "-o", str(timing), *cmd], out, err)
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing.read_text())
        if m:
            r["method"] = "/usr/bin/time -v"
            return int(m.group(1)), r
    r = c.run_process(cmd, out, err)
    r["method"] = "wait4 ru_maxrss"
    return r["maxrss_kb"], r


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sites", type=int, default=4)
    p.add_argument("--surveys-per-site", type=int, default=15)
    p.add_argument("--small", type=int, default=100, help="responses per survey, small run (default 100)")
    p.add_argument("--large", type=int, default=1000, help="responses per survey, large run (default 1000)")
    p.add_argument(
        "--shape",
        choices=("both", "long", "short"),
        default="both",
        help="long: 15 surveys per site, 100 vs 1,000 responses each; short: 150 one-page "
        "surveys per site, 10 vs 100 responses each (default both)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per size (default 3; peak RSS varies from run to run with how far prefetching gets ahead)",
    )
    p.add_argument("--quick", action="store_true", help="long shape only, 10 and 100 responses per survey, 1 run each")
    a = p.parse_args(argv)
    if a.quick:
        a.small, a.large, a.repeat, a.shape = 10, 100, 1, "long"

    tmp = c.workdir("memory")
    work = Path(tmp.name)
    tap = c.tap_executable()
    c.header("memory: peak RSS at 6,000 and 60,000 responses", a)
    about_kb, r = peak_rss([tap, "--about", "--format", "json"], work / "about.out", work / "about.err")
    print(f"tap-hotjar --about (imports only): peak RSS {about_kb / 1024:.1f} MiB ({r['method']})")
    shapes = [
        ("fewer, longer surveys", a.surveys_per_site, a.small, a.large),
        ("many small surveys", a.surveys_per_site * 10, a.small // 10, a.large // 10),
    ]
    if a.shape != "both":
        shapes = shapes[:1] if a.shape == "long" else shapes[1:]
    worst = 0.0
    for label, per_site, small_n, large_n in shapes:
        print(
            f"\n{label}: {a.sites} sites x {per_site} surveys x {small_n} or {large_n} responses "
            f"({-(-small_n // 100)} or {-(-large_n // 100)} pages per survey)"
        )
        results: list[list[int]] = []
        for per_survey in (small_n, large_n):
            n = a.sites * per_site * per_survey
            runs: list[int] = []
            with c.Simulator(
                work,
                sites=a.sites,
                surveys_per_site=per_site,
                responses_per_survey=per_survey,
                empty_sites=0,
                empty_surveys=0,
                rate_limit=0,
            ) as sim:
                config = sim.write_config(work / "config.json")
                for i in range(a.repeat):
                    out, err = work / "out.jsonl", work / "err.txt"
                    kb, r = peak_rss([tap, "--config", str(config)], out, err)
                    if r["returncode"] != 0:
                        print(f"tap failed ({r['returncode']}):\n{err.read_text()[-2000:]}")
                        return 1
                    msgs = c.count_messages(out)
                    got = c.records(msgs, "survey_responses")
                    out.unlink()
                    runs.append(kb)
                    print(
                        f"  {n:>7,} responses, run {i + 1} ({got:,} emitted, {c.records(msgs):,} "
                        f"records): peak RSS {kb / 1024:.1f} MiB  ({r['wall']:.1f} s, {r['method']})"
                    )
            results.append(runs)
        small, large = (c.median(r) for r in results)
        ratio = large / small
        worst = max(worst, ratio)
        print(
            f"  median peak RSS: {small / 1024:.1f} MiB at {a.sites * per_site * small_n:,} "
            f"responses, {large / 1024:.1f} MiB at {a.sites * per_site * large_n:,}"
        )
        print(
            f"  ratio large/small (medians): {ratio:.3f}   (goal <= 1.10); worst case "
            f"(max large / min small): {max(results[1]) / min(results[0]):.3f}"
        )
    print(f"\nresult: highest ratio {worst:.3f}: {'goal met' if worst <= 1.10 else 'goal NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
