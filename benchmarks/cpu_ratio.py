"""The tap's CPU per record against the floor's, on the same pages and the same records.

The floor (floor.py) is raw ``requests`` + ``json.dumps``: it fetches the same pages
and writes the same RECORD lines as the tap for the streams selected, through a
buffer of its own whatever the environment says. The simulator runs in its own
process with its rate limit off, so what is measured is CPU spent working, not
waiting (the tap still paces itself; CPU time does not count that).

Measured on each dataset (``--shapes``, see ``_common.SHAPES``): ``issue20``, issue
#20's shape (1 site, 20 surveys x 3,000 responses, exactly 4 answers each, one of them
to a question no longer in the survey, a number in every response's
``user_attributes``), and ``benchmarks``, the benchmarks' own (4 sites x 5 surveys x
3,000 responses, the simulator's varied answers); each in two environments
(``--envs``): PYTHONUNBUFFERED=1 (``unbuffered``; many Docker images set it) and
without it (``buffered``), for the tap and the floor alike.

For each shape, environment and selection (default: every stream):

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

    .venv/bin/python benchmarks/cpu_ratio.py                  # 2 shapes x 2 environments, every stream
    .venv/bin/python benchmarks/cpu_ratio.py --quick          # x 300 responses, 2 pairs (< 1 min)
    .venv/bin/python benchmarks/cpu_ratio.py --shapes issue20 --envs unbuffered --pairs 5
    .venv/bin/python benchmarks/cpu_ratio.py --selections surveys+survey_responses,all --json after.json
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

FLOOR = str(Path(__file__).resolve().parent / "floor.py")


def run(name: str, cmd: list[str], sim: c.Simulator, work: Path, env: dict, digest: bool = False) -> dict:
    sim.reset_counts()
    r = c.run_counted(cmd, work / f"{name}.stderr", digest=digest, env=env)
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
    p.add_argument(
        "--shapes", default="issue20,benchmarks", help=f"comma-separated, of {', '.join(c.SHAPES)} (default both)"
    )
    p.add_argument(
        "--envs",
        default="unbuffered,buffered",
        help="comma-separated: unbuffered (PYTHONUNBUFFERED=1), buffered (unset); default both",
    )
    p.add_argument("--responses-per-survey", type=int, help="instead of the shape's 3,000 (30 pages)")
    p.add_argument("--pairs", type=int, default=3, help="tap/floor pairs per measurement (default 3)")
    p.add_argument(
        "--selections",
        default="all",
        help="comma-separated; each 'all' or stream names joined with '+' (default all)",
    )
    p.add_argument("--no-check", action="store_true", help="skip the check that both write the same records")
    p.add_argument("--quick", action="store_true", help="300 responses a survey, 2 pairs")
    p.add_argument("--json", help="also write the figures to this JSON file")
    a = p.parse_args(argv)
    if a.quick:
        a.responses_per_survey, a.pairs = a.responses_per_survey or 300, 2
    selections = [c.streams_arg(s.strip()) for s in a.selections.split(",") if s.strip()]
    shapes = [s.strip() for s in a.shapes.split(",") if s.strip()]
    envs = [e.strip() for e in a.envs.split(",") if e.strip()]
    for name in shapes:
        if name not in c.SHAPES:
            p.error(f"unknown shape {name!r} (known: {', '.join(c.SHAPES)})")
    for name in envs:
        if name not in c.UNBUFFERED_ENVS:
            p.error(f"unknown environment {name!r} (known: {', '.join(c.UNBUFFERED_ENVS)})")

    meta = c.header("cpu_ratio: tap CPU per record against the floor (requests + json.dumps)", a)
    print(
        f"shapes: {', '.join(shapes)}; environments: "
        + ", ".join(f"{e} (PYTHONUNBUFFERED={c.UNBUFFERED_ENVS[e] or 'unset'})" for e in envs)
        + f"; simulator in its own process, rate limit off; {a.pairs} pairs each, alternating which runs first"
    )
    tmp = c.workdir("cpu")
    work = Path(tmp.name)
    rows: list[dict] = []
    summary: list[dict] = []
    ok = True
    startup: dict[str, dict[str, float]] = {}
    for shape_name in shapes:
        shape = c.SHAPES[shape_name]
        responses = a.responses_per_survey or shape["responses_per_survey"]
        per_site = shape["surveys"] // shape["sites"]
        answers = shape["answers_per_response"]
        print(
            f"\nshape {shape_name}: {shape['sites']} site(s) x {per_site} surveys x {responses:,} responses, "
            + (f"{answers} answers each" if answers is not None else "the simulator's varied answers")
        )
        with c.Simulator(
            work,
            sites=shape["sites"],
            surveys_per_site=per_site,
            responses_per_survey=responses,
            answers_per_response=answers,
            empty_sites=0,
            empty_surveys=0,
            rate_limit=0,
        ) as sim:
            config = sim.write_config(work / "config.json")
            for env_name in envs:
                env = c.env_with(c.UNBUFFERED_ENVS[env_name])
                if env_name not in startup:
                    # Interpreter start-up and imports, paid once per run whatever the size: the
                    # CPU of `tap-hotjar --about` and of `floor.py --help`, median of 3 each.
                    about = [c.tap_executable(), "--about"]
                    startup[env_name] = {
                        "tap": c.median(
                            [c.run_process(about, os.devnull, os.devnull, env=env)["cpu"] for _ in range(3)]
                        ),
                        "floor": c.median(
                            [
                                c.run_process([c.PYTHON, FLOOR, "--help"], os.devnull, os.devnull, env=env)["cpu"]
                                for _ in range(3)
                            ]
                        ),
                    }
                    print(
                        f"start-up CPU (imports only, {env_name}): tap {startup[env_name]['tap']:.2f} s, "
                        f"floor {startup[env_name]['floor']:.2f} s"
                    )
                for streams in selections:
                    label = c.streams_label(streams)
                    tap = c.tap_command(config, c.write_catalog(work / "catalog.json", config, streams))
                    floor = [c.PYTHON, FLOOR, "--config", str(config), "--streams", ",".join(streams)]
                    where = f"{shape_name}, {env_name}, {label}"
                    print(f"  {where}:")
                    if not a.no_check:
                        t = run("tap", tap, sim, work, env, digest=True)
                        f = run("floor", floor, sim, work, env, digest=True)
                        same = t["records_by_stream"] == f["records_by_stream"] and t["digests"] == f["digests"]
                        same_pages = t["by_survey"] == f["by_survey"]
                        ok = ok and same and same_pages
                        print(
                            f"    check: same records as the tap: {'yes' if same else 'NO'} "
                            f"({', '.join(f'{k} {v:,}' for k, v in t['records_by_stream'].items())}); "
                            f"same response pages per survey: {'yes' if same_pages else 'NO'} "
                            f"({t['requests']} and {f['requests']} requests in all)"
                        )
                        if not same:
                            print(f"      tap:   {t['records_by_stream']} {t['digests']}")
                            print(f"      floor: {f['records_by_stream']} {f['digests']}")
                    pairs = []
                    for i in range(a.pairs):
                        order = [("tap", tap), ("floor", floor)]
                        if i % 2:
                            order.reverse()
                        pair = {name: run(name, cmd, sim, work, env) for name, cmd in order}
                        ratio = pair["tap"]["cpu"] / pair["floor"]["cpu"]
                        for r in pair.values():
                            r.update(shape=shape_name, env=env_name, selection=label, pair=i + 1, cpu_ratio=ratio)
                            r.pop("by_survey")
                            rows.append(r)
                        pairs.append(pair)
                        print(
                            f"    pair {i + 1} ({order[0][0]} first): tap {pair['tap']['cpu']:.2f} s CPU, floor "
                            f"{pair['floor']['cpu']:.2f} s CPU, ratio {ratio:.2f}",
                            flush=True,
                        )
                    up = startup[env_name]
                    ratios = [pr["tap"]["cpu"] / pr["floor"]["cpu"] for pr in pairs]
                    net = [(pr["tap"]["cpu"] - up["tap"]) / (pr["floor"]["cpu"] - up["floor"]) for pr in pairs]
                    summary.append(
                        {
                            "shape": shape_name,
                            "env": env_name,
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
            ("shape", "shape", ""),
            ("environment", "env", ""),
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
            ("shape", "shape", ""),
            ("environment", "env", ""),
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
            figures[f"{s['shape']}.{s['env']}.{s['selection']}.{k}"] = s[k]
    for env_name, up in startup.items():
        figures[f"startup_tap_cpu.{env_name}"], figures[f"startup_floor_cpu.{env_name}"] = up["tap"], up["floor"]
    c.finish(meta, rows + [dict(s, summary=True) for s in summary], figures, a.json)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
