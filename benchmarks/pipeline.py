"""End to end: `meltano run` into PostgreSQL and DuckDB, beside the tap alone and the loaders alone.

All in one run, on one dataset (default: 20 surveys x 3,000 responses, 60,000 responses
and about 240,000 answers; the simulator keeps the API's 50 requests/s):

1. the tap alone, its Singer messages to a file (RECORD messages);
2. target-postgres alone on that file, configured as meltano.yml first had it
   (INSERT, validate_records on): the reference of issue #13;
3. target-postgres alone on that file, as meltano.yml has it now (COPY, no validation);
4. target-duckdb alone on that file, as meltano.yml has it;
5. `meltano run tap-hotjar target-postgres` (RECORD messages, COPY);
6. `meltano run hotjar-to-postgres` (the job: tap-hotjar--batch, BATCH files, COPY);
7. `meltano run tap-hotjar target-duckdb`.

Ratios: (6) and (5) over (2), (7) over (4). Each load goes into a fresh PostgreSQL schema
(dropped afterwards) or DuckDB file. Meltano and the plugins must be installed
(scripts/demo.sh or the end-to-end tests do that once).

    .venv/bin/python benchmarks/pipeline.py            # the issue's size, about 8 minutes
    .venv/bin/python benchmarks/pipeline.py --quick    # 4 surveys x 1,500 responses
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

ROOT = c.ROOT
MELTANO = ROOT / ".meltano/meltano-venv/bin/meltano"
TARGET_POSTGRES = ROOT / ".meltano/loaders/target-postgres/venv/bin/target-postgres"
TARGET_DUCKDB = ROOT / ".meltano/loaders/target-duckdb/venv/bin/target-duckdb"
PG = c.PG


def _postgres_config(schema: str, *, first: bool) -> dict:
    config = {**PG, "default_target_schema": schema, "add_record_metadata": True, "activate_version": True}
    if first:
        return {**config, "use_copy": False, "validate_records": True}
    return {**config, "use_copy": True, "validate_records": False}


def _meltano_env(workdir: Path, sim_config: dict, schema: str, duckdb_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "TAP_HOTJAR", "TARGET_"))}
    env.update(
        MELTANO_PROJECT_ROOT=str(ROOT),
        MELTANO_DATABASE_URI=f"sqlite:///{workdir / f'meltano-{uuid.uuid4().hex[:6]}.db'}",
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_CLI_DISABLE_VERSION_CHECK="1",
        TAP_HOTJAR_API_URL=sim_config["api_url"],
        TAP_HOTJAR_CLIENT_ID=sim_config["client_id"],
        TAP_HOTJAR_CLIENT_SECRET=sim_config["client_secret"],
        TAP_HOTJAR_SITE_IDS=json.dumps(sim_config["site_ids"]),
        TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA=schema,
        TARGET_DUCKDB_PATH=str(duckdb_path),
    )
    return env


def _timed(name: str, cmd: list[str], workdir: Path, *, stdin: Path | None = None, env: dict | None = None) -> dict:
    out, err = workdir / f"{name}.out", workdir / f"{name}.err"
    with open(stdin or os.devnull, "rb") as source, open(out, "wb") as o, open(err, "wb") as e:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=source, stdout=o, stderr=e, cwd=ROOT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = err.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{name} exited {code}:\n{tail}")
    print(f"  {name}: {wall:.1f} s", flush=True)
    return {"step": name, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--surveys", type=int, default=20)
    parser.add_argument("--responses-per-survey", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="4 surveys x 1,500 responses")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run every step this many times, interleaved; medians are reported"
    )
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.surveys, args.responses_per_survey = 4, 1500
    for path in (MELTANO, TARGET_POSTGRES, TARGET_DUCKDB):
        if not path.exists():
            raise SystemExit(f"{path} is missing: run scripts/demo.sh (or the end-to-end tests) once first")
    meta = c.header("End-to-end pipelines: meltano run into PostgreSQL and DuckDB", args)
    print(f"dataset: {args.surveys} surveys x {args.responses_per_survey} responses; API limit 50/s enforced\n")
    schemas: list[str] = []
    steps: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="hotjar-pipeline-") as tmp:
        workdir = Path(tmp)
        options = {
            "sites": 1,
            "surveys_per_site": args.surveys,
            "responses_per_survey": args.responses_per_survey,
            "empty_sites": 0,
            "empty_surveys": 0,
        }
        try:
            with c.Simulator(workdir, **options) as sim:
                config = sim.write_config(workdir / "tap.json")
                messages = workdir / "tap.out"

                def schema() -> str:
                    schemas.append(f"bench_pipeline_{uuid.uuid4().hex[:10]}")
                    return schemas[-1]

                def loader_config(name: str, doc: dict) -> Path:
                    path = workdir / f"{name}.json"
                    path.write_text(json.dumps(doc))
                    return path

                first = loader_config("pg-first", {})
                now = loader_config("pg-now", {})
                duck = loader_config("duck", {})
                meltano = [str(MELTANO), "--env-file", os.devnull]
                for _ in range(args.repeat):
                    steps.append(_timed("tap", [c.tap_executable(), "--config", str(config)], workdir))
                    print(f"    {messages.stat().st_size / 1e6:.0f} MB of Singer messages", flush=True)
                    for label, path, as_first in (
                        ("target-postgres (INSERT, validation)", first, True),
                        ("target-postgres (COPY)", now, False),
                    ):
                        path.write_text(json.dumps(_postgres_config(schema(), first=as_first)))
                        steps.append(
                            _timed(label, [str(TARGET_POSTGRES), "--config", str(path)], workdir, stdin=messages)
                        )
                    duck.write_text(
                        json.dumps(
                            {
                                "path": str(workdir / f"alone-{uuid.uuid4().hex[:6]}.duckdb"),
                                "default_target_schema": "hotjar",
                                "add_metadata_columns": True,
                                "batch_size_rows": 100000,
                            }
                        )
                    )
                    steps.append(
                        _timed("target-duckdb", [str(TARGET_DUCKDB), "--config", str(duck)], workdir, stdin=messages)
                    )
                    for name, blocks in [
                        ("meltano run tap-hotjar target-postgres", ["tap-hotjar", "target-postgres"]),
                        ("meltano run hotjar-to-postgres (BATCH)", ["hotjar-to-postgres"]),
                        ("meltano run tap-hotjar target-duckdb", ["tap-hotjar", "target-duckdb"]),
                    ]:
                        env = _meltano_env(workdir, sim.config, schema(), workdir / f"{uuid.uuid4().hex[:6]}.duckdb")
                        steps.append(_timed(name, [*meltano, "run", *blocks], workdir, env=env))
        finally:
            for name in schemas:
                c.psql(f'drop schema if exists "{name}" cascade')

    names = list(dict.fromkeys(step["step"] for step in steps))
    wall = {name: c.median([s["wall"] for s in steps if s["step"] == name]) for name in names}
    cpu = {name: c.median([s["cpu"] for s in steps if s["step"] == name]) for name in names}
    reference = wall["target-postgres (INSERT, validation)"]
    rows = [{"step": name, "wall": wall[name], "cpu": cpu[name], "ratio": wall[name] / reference} for name in names]
    print()
    c.table(
        rows,
        [
            ("step", "step", ""),
            ("wall s", "wall", ".1f"),
            ("CPU s", "cpu", ".1f"),
            ("/ first Postgres load", "ratio", ".2f"),
        ],
    )
    figures = {
        "tap_wall": wall["tap"],
        "postgres_first_config_wall": reference,
        "postgres_record_pipeline_ratio": wall["meltano run tap-hotjar target-postgres"] / reference,
        "postgres_batch_pipeline_ratio": wall["meltano run hotjar-to-postgres (BATCH)"] / reference,
        "duckdb_pipeline_over_target_alone": wall["meltano run tap-hotjar target-duckdb"] / wall["target-duckdb"],
    }
    print()
    for key, value in figures.items():
        print(f"  {key}: {value:.2f}")
    print("  goals: Postgres pipeline <= 0.35 x the first configuration; DuckDB pipeline <= 1.2 x target-duckdb alone")
    c.finish(meta, steps, figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
