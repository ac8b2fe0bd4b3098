"""The tap's CPU per record against the floor's, on the same pages and the same records.

The floor (floor.py) is raw ``requests`` + ``json.dumps``: it fetches the same pages
and writes the same RECORD lines as the tap for the streams selected. The simulator
runs in its own process with its rate limit off, so what is measured is CPU spent
working, not waiting (the tap still paces itself; CPU time does not count that).
Default dataset: 20 surveys x 3,000 responses (30 pages each) over 4 sites, as in
issue #10.

For each selection (surveys + survey_responses; every stream):

1. a check run of each program: records per stream and an order-independent digest
   of each stream's records (time_extracted left out) must be equal, and so must
   the response pages requested per survey (``--no-check`` skips it);
2. ``--pairs`` pairs (default 3), alternating which program runs first: tap CPU
   (user+sys of its process) / floor CPU. Both write the same records, so this is
   the ratio of CPU per record. The median of the per-pair ratios is the figure;
   ratios within one run are what to compare, absolute times are noise on a shared
   machine. Start-up (interpreter and imports: ``tap-hotjar --about`` and
   ``floor.py --help``) is measured apart, and the ratio net of it printed too:
   it is paid once per run, whatever the size, so it weighs on small runs only.

    .venv/bin/python benchmarks/cpu_ratio.py
    .venv/bin/python benchmarks/cpu_ratio.py --quick          # 20 x 300, 2 pairs (< 30 s)
    .venv/bin/python benchmarks/cpu_ratio.py --selections all --pairs 5 --json after.json
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

FLOOR = str(Path(__file__).resolve().parent / "floor.py")


def run(name: str, cmd: list[str], sim: c.Simulator, work: Path, digest: bool = False) -> dict:
    sim.reset_counts()
    r = c.run_counted(cmd, work / f"{name}.stderr", digest=digest)
    counts = sim.counts()
    if r["returncode"] != 0:
        raise SystemExit(f"{name} failed ({r['returncode']}):\n{(work / f'{name}.stderr').read_text()[-2000:]}")
    records = sum(r["out"]["records"].values())
    return {
        "program": name,
        "wall": r["wall"],
        "cpu": r["cpu"],
        "records": records,
        "records_by_stream": r["out"]["records"],
        "record_mb": r["out"]["bytes"].get("RECORD", 0) / 1e6,
        "cpu_per_record_us": 1e6 * r["cpu"] / records if records else None,
        "requests": counts["total"],
        "by_survey": counts["responses_by_survey"],
        "digests": r["out"].get("digests"),
        "rss_mb": r["maxrss_kb"] / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--surveys", type=int, default=20, help="surveys in all (default 20)")
    p.add_argument("--sites", type=int, default=4, help="sites they are spread over (default 4)")
    p.add_argument("--responses-per-survey", type=int, default=3000, help="default 3000 (30 pages)")
    p.add_argument("--pairs", type=int, default=3, help="tap/floor pairs per selection (default 3)")
    p.add_argument(
        "--selections",
        default="surveys+survey_responses,all",
        help="comma-separated; each 'all' or stream names joined with '+' (default surveys+survey_responses,all)",
    )
    p.add_argument("--no-check", action="store_true", help="skip the check that both write the same records")
    p.add_argument("--quick", action="store_true", help="20 x 300, 2 pairs")
    p.add_argument("--json", help="also write the figures to this JSON file")
    a = p.parse_args(argv)
    if a.quick:
        a.responses_per_survey, a.pairs = 300, 2
    selections = [c.streams_arg(s.strip()) for s in a.selections.split(",") if s.strip()]
    per_site = a.surveys // a.sites

    meta = c.header("cpu_ratio: tap CPU per record against the floor (requests + json.dumps)", a)
    print(
        f"dataset: {a.sites} sites x {per_site} surveys x {a.responses_per_survey:,} responses; simulator in its "
        f"own process, rate limit off; {a.pairs} pairs per selection, alternating which runs first"
    )
    tmp = c.workdir("cpu")
    work = Path(tmp.name)
    rows: list[dict] = []
    summary: list[dict] = []
    ok = True
    with c.Simulator(
        work,
        sites=a.sites,
        surveys_per_site=per_site,
        responses_per_survey=a.responses_per_survey,
        empty_sites=0,
        empty_surveys=0,
        rate_limit=0,
    ) as sim:
        config = sim.write_config(work / "config.json")
        # Interpreter start-up and imports, paid once per run whatever the size: the
        # CPU of `tap-hotjar --about` and of `floor.py --help`, median of 3 each.
        startup = {
            "tap": c.median(
                [c.run_process([c.tap_executable(), "--about"], os.devnull, os.devnull)["cpu"] for _ in range(3)]
            ),
            "floor": c.median(
                [c.run_process([c.PYTHON, FLOOR, "--help"], os.devnull, os.devnull)["cpu"] for _ in range(3)]
            ),
        }
        print(f"start-up CPU (imports only): tap {startup['tap']:.2f} s, floor {startup['floor']:.2f} s")
        for streams in selections:
            label = c.streams_label(streams)
            tap = c.tap_command(config, c.write_catalog(work / "catalog.json", config, streams))
            floor = [c.PYTHON, FLOOR, "--config", str(config), "--streams", ",".join(streams)]
            print(f"\nselection: {label}")
            if not a.no_check:
                t, f = run("tap", tap, sim, work, digest=True), run("floor", floor, sim, work, digest=True)
                same = t["records_by_stream"] == f["records_by_stream"] and t["digests"] == f["digests"]
                same_pages = t["by_survey"] == f["by_survey"]
                ok = ok and same and same_pages
                print(
                    f"  check: same records as the tap: {'yes' if same else 'NO'} "
                    f"({', '.join(f'{k} {v:,}' for k, v in t['records_by_stream'].items())}); "
                    f"same response pages per survey: {'yes' if same_pages else 'NO'} "
                    f"({t['requests']} and {f['requests']} requests in all)"
                )
                if not same:
                    print(f"    tap:   {t['records_by_stream']} {t['digests']}")
                    print(f"    floor: {f['records_by_stream']} {f['digests']}")
            pairs = []
            for i in range(a.pairs):
                order = [("tap", tap), ("floor", floor)]
                if i % 2:
                    order.reverse()
                pair = {name: run(name, cmd, sim, work) for name, cmd in order}
                pair["tap"]["pair"] = pair["floor"]["pair"] = i + 1
                ratio = pair["tap"]["cpu"] / pair["floor"]["cpu"]
                for r in pair.values():
                    r["selection"] = label
                    r["cpu_ratio"] = ratio
                    r.pop("by_survey")
                    rows.append(r)
                pairs.append(pair)
                print(
                    f"  pair {i + 1} ({order[0][0]} first): tap {pair['tap']['cpu']:.2f} s CPU, floor "
                    f"{pair['floor']['cpu']:.2f} s CPU, ratio {ratio:.2f}",
                    flush=True,
                )
            ratios = [pr["tap"]["cpu"] / pr["floor"]["cpu"] for pr in pairs]
            net = [(pr["tap"]["cpu"] - startup["tap"]) / (pr["floor"]["cpu"] - startup["floor"]) for pr in pairs]
            summary.append(
                {
                    "selection": label,
                    "records": pairs[0]["tap"]["records"],
                    "record_mb": pairs[0]["tap"]["record_mb"],
                    "tap_cpu": c.median([pr["tap"]["cpu"] for pr in pairs]),
                    "floor_cpu": c.median([pr["floor"]["cpu"] for pr in pairs]),
                    "tap_us": c.median([pr["tap"]["cpu_per_record_us"] for pr in pairs]),
                    "floor_us": c.median([pr["floor"]["cpu_per_record_us"] for pr in pairs]),
                    "tap_wall": c.median([pr["tap"]["wall"] for pr in pairs]),
                    "floor_wall": c.median([pr["floor"]["wall"] for pr in pairs]),
                    "ratios": " ".join(f"{x:.2f}" for x in ratios),
                    "ratio": c.median(ratios),
                    "net_ratio": c.median(net),
                    "requests": pairs[0]["tap"]["requests"],
                }
            )
    print("\nper run:")
    c.table(
        rows,
        [
            ("selection", "selection", ""),
            ("pair", "pair", "g"),
            ("program", "program", ""),
            ("wall s", "wall", ".2f"),
            ("CPU s", "cpu", ".2f"),
            ("records", "records", ","),
            ("CPU us/record", "cpu_per_record_us", ".1f"),
            ("requests", "requests", ","),
            ("peak RSS MB", "rss_mb", ".0f"),
        ],
        "  ",
    )
    print("\nmedians (the tap's wall time includes its own pacing at its request limit; the floor's does not):")
    c.table(
        summary,
        [
            ("selection", "selection", ""),
            ("records", "records", ","),
            ("RECORD MB", "record_mb", ".1f"),
            ("tap CPU s", "tap_cpu", ".2f"),
            ("floor CPU s", "floor_cpu", ".2f"),
            ("tap us/record", "tap_us", ".1f"),
            ("floor us/record", "floor_us", ".1f"),
            ("ratio per pair", "ratios", ""),
            ("median ratio", "ratio", ".2f"),
            ("net of start-up", "net_ratio", ".2f"),
            ("tap wall s", "tap_wall", ".1f"),
            ("floor wall s", "floor_wall", ".1f"),
        ],
        "  ",
    )
    figures: dict = {}
    for s in summary:
        for k in ("ratio", "net_ratio", "tap_us", "floor_us", "tap_cpu", "floor_cpu"):
            figures[f"{s['selection']}.{k}"] = s[k]
    figures["startup_tap_cpu"], figures["startup_floor_cpu"] = startup["tap"], startup["floor"]
    c.finish(meta, rows + [dict(s, summary=True) for s in summary], figures, a.json)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
