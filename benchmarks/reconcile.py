"""What a reconciliation costs, beside a full sync and an incremental run, in both warehouses.

On one dataset (default: 20 surveys x 3,000 responses, 60,000 responses and about
240,000 answers; the simulator keeps the API's 50 requests/s), for PostgreSQL
(target-postgres as meltano.yml configures it, RECORD messages) and DuckDB
(target-duckdb), each into a fresh schema or file:

1. a full sync: `tap-hotjar | target`;
2. an incremental run from its state, after 5 new responses per survey;
3. deletions in the simulator: every 100th response of every survey, one survey, one
   question; then the reconciliation run: `tap-hotjar` with reconcile_evidence_path
   `| target`;
4. the apply step (what `hotjar-reconcile` runs, in this process, with every SQL
   statement counted): set-based, the statement count does not grow with the rows.

Printed: wall time, requests made, and for the apply step the statements and rows
marked; ratios of the reconciliation to the full sync. Meltano's loaders must be
installed (scripts/demo.sh or the end-to-end tests do that once).

    .venv/bin/python benchmarks/reconcile.py            # the issue's size
    .venv/bin/python benchmarks/reconcile.py --quick    # 4 surveys x 1,500 responses
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
import typing as t
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

ROOT = c.ROOT
sys.path.insert(0, str(ROOT))

from tap_hotjar.reconciliation import read_evidence  # noqa: E402
from tap_hotjar.warehouse.connection import Connection, connect  # noqa: E402
from tap_hotjar.warehouse.reconcile import Reconciliation  # noqa: E402
from tap_hotjar.warehouse.tables import Layout  # noqa: E402

TARGETS = {
    "postgres": ROOT / ".meltano/loaders/target-postgres/venv/bin/target-postgres",
    "duckdb": ROOT / ".meltano/loaders/target-duckdb/venv/bin/target-duckdb",
}
PG = c.PG


class CountingConnection(Connection):
    """The warehouse connection hotjar-reconcile uses, counting the statements it runs."""

    statements = 0

    def execute(self, sql: str, params: t.Sequence[t.Any] = ()) -> t.Any:
        type(self).statements += 1
        return super().execute(sql, params)


def _load(kind: str, target_config: Path, tap_config: Path, workdir: Path, state: Path | None = None) -> dict:
    """tap | target, timed; returns wall, CPU of both processes and the last state."""
    args = [c.tap_executable(), "--config", str(tap_config)] + (["--state", str(state)] if state else [])
    name = uuid.uuid4().hex[:6]
    with open(workdir / f"{name}.tap.err", "wb") as tap_err, open(workdir / f"{name}.target.err", "wb") as tgt_err:
        t0 = time.perf_counter()
        tap = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=tap_err)
        target = subprocess.Popen(
            [str(TARGETS[kind]), "--config", str(target_config)],
            stdin=tap.stdout,
            stdout=subprocess.PIPE,
            stderr=tgt_err,
        )
        assert tap.stdout is not None
        tap.stdout.close()
        out, _ = target.communicate()
        tap.wait()
        wall = time.perf_counter() - t0
    if tap.returncode or target.returncode:
        raise SystemExit(f"load failed: tap {tap.returncode}, target {target.returncode} (see {workdir})")
    states = [json.loads(line) for line in out.splitlines() if line.strip()]
    state_path = workdir / f"{name}.state.json"
    state_path.write_text(json.dumps(states[-1] if states else {}))
    return {"wall": wall, "state": state_path}


def _delete(sim: c.Simulator, site: int, surveys: list[str]) -> dict:
    truth = sim.ground_truth()["sites"][str(site)]
    deleted = 0
    for survey in surveys[:-1]:
        ids = [r["id"] for r in truth["responses"][survey]]
        gone = ids[::100]
        sim._call("POST", "/_sim/delete-responses", {"site_id": site, "survey_id": survey, "response_ids": gone})
        deleted += len(gone)
    sim._call("POST", "/_sim/delete-survey", {"site_id": site, "survey_id": surveys[-1]})
    question = next(s for s in truth["surveys"] if s["id"] == surveys[0])["questions"][0]["id"]
    sim._call("POST", "/_sim/delete-question", {"site_id": site, "survey_id": surveys[0], "question_id": question})
    return {"responses": deleted, "surveys": 1, "questions": 1}


def _apply(url: str, layout: Layout, evidence_path: Path) -> dict:
    evidence = read_evidence(evidence_path)
    conn = connect(url)
    counting = CountingConnection(conn.url, conn._raw)
    CountingConnection.statements = 0
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    t0 = time.perf_counter()
    with counting.transaction():
        outcome = Reconciliation(counting, layout, evidence).apply(erase=False, dry_run=False, now=now)
    wall = time.perf_counter() - t0
    conn.close()
    return {
        "wall": wall,
        "statements": CountingConnection.statements,
        "marked": sum(outcome.removed.raw.values()),
        "left_alone": len(outcome.left_alone),
    }


def run_kind(kind: str, args: argparse.Namespace, workdir: Path) -> list[dict]:
    options = {
        "sites": 1,
        "surveys_per_site": args.surveys,
        "responses_per_survey": args.responses_per_survey,
        "empty_sites": 0,
        "empty_surveys": 0,
    }
    schema = f"bench_reconcile_{uuid.uuid4().hex[:8]}" if kind == "postgres" else "hotjar"
    db = workdir / f"{kind}.duckdb"
    target = workdir / f"{kind}-target.json"
    if kind == "postgres":
        target.write_text(
            json.dumps(
                {
                    **PG,
                    "default_target_schema": schema,
                    "add_record_metadata": True,
                    "use_copy": True,
                    "validate_records": False,
                }
            )
        )
        url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{PG['database']}"
    else:
        target.write_text(json.dumps({"path": str(db), "default_target_schema": schema, "add_metadata_columns": True}))
        url = f"duckdb://{db}"
    rows = []
    try:
        with c.Simulator(workdir, **options) as sim:
            site = sim.config["site_ids"][0]
            config = sim.write_config(workdir / f"{kind}-tap.json")

            def step(name: str, **extra: object) -> dict:
                counts = sim.counts()
                row = {"warehouse": kind, "step": name, "requests": counts["total"], **extra}
                sim.reset_counts()
                print(f"  {kind}: {name}: {row.get('wall', 0):.1f} s, {row['requests']} requests", flush=True)
                rows.append(row)
                return row

            sim.reset_counts()
            full = _load(kind, target, config, workdir)
            step("full sync", wall=full["wall"])
            for survey in [s["id"] for s in sim.ground_truth()["sites"][str(site)]["surveys"]]:
                sim.add_responses(site, survey, 5)
            sim.reset_counts()
            incremental = _load(kind, target, config, workdir, state=full["state"])
            step("incremental run", wall=incremental["wall"])
            surveys = [s["id"] for s in sim.ground_truth()["sites"][str(site)]["surveys"]]
            deleted = _delete(sim, site, surveys)
            now = sim.ground_truth()["sites"][str(site)]
            # What a first full sync of the data as it is now needs: the token, the list, a
            # request per 100 responses (one for a survey without any).
            minimum = 1 + max(1, -(-len(now["surveys"]) // 100))
            minimum += sum(max(1, -(-len(responses) // 100)) for responses in now["responses"].values())
            sim.reset_counts()
            evidence = workdir / f"{kind}-evidence.json"
            reconcile_config = sim.write_config(
                workdir / f"{kind}-reconcile.json", reconcile_evidence_path=str(evidence)
            )
            reconciliation = _load(kind, target, reconcile_config, workdir)
            step("reconciliation run (tap | target)", wall=reconciliation["wall"], first_sync_requests=minimum)
            applied = _apply(url, Layout(raw_schema=schema, models_schemas=()), evidence)
            rows.append({"warehouse": kind, "step": "apply (hotjar-reconcile)", "requests": 0, **applied})
            print(
                f"  {kind}: apply: {applied['wall']:.2f} s, {applied['statements']} statements, "
                f"{applied['marked']} rows marked ({deleted['responses']} responses, a survey and a question deleted)",
                flush=True,
            )
    finally:
        if kind == "postgres":
            c.psql(f'drop schema if exists "{schema}" cascade')
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--surveys", type=int, default=20)
    parser.add_argument("--responses-per-survey", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="4 surveys x 1,500 responses")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.surveys, args.responses_per_survey = 4, 1500
    for path in TARGETS.values():
        if not path.exists():
            raise SystemExit(f"{path} is missing: run scripts/demo.sh (or the end-to-end tests) once first")
    meta = c.header("Reconciliation beside a full sync and an incremental run", args)
    print(f"dataset: {args.surveys} surveys x {args.responses_per_survey} responses; API limit 50/s enforced\n")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="hotjar-reconcile-") as tmp:
        for kind in ("postgres", "duckdb"):
            rows += run_kind(kind, args, Path(tmp))
    print()
    c.table(
        rows,
        [
            ("warehouse", "warehouse", ""),
            ("step", "step", ""),
            ("wall s", "wall", ".1f"),
            ("requests", "requests", "d"),
            ("a first sync's", "first_sync_requests", "d"),
            ("statements", "statements", ""),
            ("rows marked", "marked", ""),
        ],
    )
    figures: dict[str, float] = {}
    for kind in ("postgres", "duckdb"):
        by = {r["step"]: r for r in rows if r["warehouse"] == kind}
        full, reconcile = by["full sync"], by["reconciliation run (tap | target)"]
        # The same requests as a first full sync of the data as it is then (deletions included).
        figures[f"{kind}_reconcile_requests_over_first_sync"] = reconcile["requests"] / reconcile["first_sync_requests"]
        figures[f"{kind}_reconcile_wall_over_full"] = reconcile["wall"] / full["wall"]
        figures[f"{kind}_incremental_wall_over_full"] = by["incremental run"]["wall"] / full["wall"]
        figures[f"{kind}_apply_wall"] = by["apply (hotjar-reconcile)"]["wall"]
        figures[f"{kind}_apply_statements"] = by["apply (hotjar-reconcile)"]["statements"]
    print()
    for key, value in figures.items():
        print(f"  {key}: {value:.2f}")
    c.finish(meta, rows, figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
