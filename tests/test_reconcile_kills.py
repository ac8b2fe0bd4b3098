"""Reconciliation killed at any moment: the tap, the loader or the apply step.

Against real PostgreSQL and DuckDB. Whatever is killed, no row Hotjar still has is ever
marked deleted, and a complete run afterwards reconciles everything:

- the tap, at requests spread over the run (a survey list, a page midway, the last): it writes
  no evidence, and the evidence of an earlier run that was never applied is gone too
  (a run removes it when it starts), so the apply step has nothing to act on;
- the loader, after part of the tap's output: the tap finishes and writes its evidence,
  but the warehouse does not hold every row it stamped, and those surveys are left alone;
- the apply step, at times spread over its run, and (PostgreSQL) blocked before its last
  change with every other made: one transaction, so all or nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import typing as t

from tests.conftest import run_tap
from tests.e2e_helpers import TABLES
from tests.reconcile_helpers import (
    PAGE,
    assert_nothing_changed,
    delete_in_hotjar,
    first_load,
    minus,
    nothing,
    reconcile_config,
    truth,
)
from tests.warehouses import RECONCILE

if t.TYPE_CHECKING:
    from pathlib import Path

    from tests.test_reliability import FaultSimulator
    from tests.warehouses import Warehouse


def test_a_killed_tap_leaves_no_evidence_and_nothing_changes(wh: Warehouse, rsim: FaultSimulator, tmp_path: Path):
    sim = rsim
    _, before = first_load(wh, sim)
    delete_in_hotjar(sim)
    evidence = tmp_path / "evidence.json"
    # A finished run whose evidence was never applied (its job failed after the load)...
    sim.arm()  # requests numbered from here
    assert wh.load(reconcile_config(sim, evidence)).ok and evidence.exists()
    requests = sim.request_number
    # ...then runs killed at the first survey list, midway, and at the last request.
    for kill_at in sorted({2, requests // 2, requests}):
        pid: dict[str, int] = {}

        def kill(fsim: FaultSimulator, route: str, args: tuple, pid: dict[str, int] = pid) -> None:
            os.kill(pid["tap"], signal.SIGKILL)

        sim.arm({kill_at: kill})
        run = wh.load(reconcile_config(sim, evidence), on_tap_started=lambda p, pid=pid: pid.update(tap=p.pid))
        assert run.tap_returncode == -signal.SIGKILL, (kill_at, run.tap_stderr[-2000:])
        assert_nothing_changed(wh, evidence, before, kill_at)
    sim.arm()


def test_a_killed_load_leaves_the_surveys_it_did_not_finish_alone(wh: Warehouse, rsim: FaultSimulator, tmp_path: Path):
    sim = rsim
    _, before = first_load(wh, sim)
    delete_in_hotjar(sim)
    after = truth(sim)
    evidence = tmp_path / "evidence.json"
    output = run_tap(tmp_path / "count", sim.config(page_size=PAGE))
    assert output.returncode == 0
    for fraction in (0.3, 0.9):
        lines = max(1, int(len(output.messages) * fraction))
        run = wh.load(reconcile_config(sim, evidence), kill_target_after_lines=lines)
        assert run.tap_returncode == 0 and run.target_returncode == -signal.SIGKILL, fraction
        assert evidence.exists()
        applied = wh.reconcile(evidence)
        assert applied.returncode == 0, applied.stderr
        marked = wh.all_keys(deleted=True)
        assert all(not (marked[table] & after[table]) for table in TABLES), (fraction, marked)
        assert "the warehouse holds" in applied.stdout, fraction  # what was not loaded, named
    # A complete run afterwards reconciles everything.
    assert wh.load(reconcile_config(sim, evidence)).ok
    assert wh.reconcile(evidence).returncode == 0
    assert wh.all_keys() == after and wh.all_keys(deleted=True) == minus(before, after)


def _reconcile_args(wh: Warehouse, evidence: Path) -> list[str]:
    return [
        *(RECONCILE, "--warehouse", wh.url, "--evidence", str(evidence)),
        *("--raw-schema", wh.raw_schema, "--models-schema", "none"),
    ]


def _unmark(wh: Warehouse) -> None:
    with wh.connect() as con:
        for table in TABLES:
            con.execute(f"update {wh.raw_schema}.{table} set _sdc_deleted_at = null")


def test_the_apply_step_killed_at_any_moment_changes_all_or_nothing(
    wh: Warehouse, rsim: FaultSimulator, tmp_path: Path
):
    sim = rsim
    _, before = first_load(wh, sim)
    delete_in_hotjar(sim)
    after = truth(sim)
    evidence = tmp_path / "evidence.json"
    applied_path = evidence.with_name("evidence.json.applied")
    assert wh.load(reconcile_config(sim, evidence)).ok
    saved = evidence.read_bytes()
    for delay in (0.2, 0.45, 0.7, 1.0):
        evidence.write_bytes(saved)
        applied_path.unlink(missing_ok=True)
        proc = subprocess.Popen(_reconcile_args(wh, evidence), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        marked = wh.all_keys(deleted=True)
        if evidence.exists():  # killed before its commit, or between the commit and using the evidence up
            assert marked in (nothing(), minus(before, after)), delay
        else:
            assert marked == minus(before, after), delay
        _unmark(wh)  # as before the apply, for the next kill
    evidence.write_bytes(saved)
    applied_path.unlink(missing_ok=True)
    if wh.kind == "postgres":
        _killed_while_blocked_before_its_last_change(wh, evidence)
    applied = wh.reconcile(evidence)
    assert applied.returncode == 0
    assert wh.all_keys() == after and wh.all_keys(deleted=True) == minus(before, after)


def _killed_while_blocked_before_its_last_change(wh: Warehouse, evidence: Path) -> None:
    """A kill at a known moment: every change made but the last (the surveys table, which
    another session holds locked against writes), the transaction open."""
    with wh.connect() as locker:
        locker.autocommit = False
        locker.execute(f"lock table {wh.raw_schema}.surveys in exclusive mode")  # reads pass, writes wait
        proc = subprocess.Popen(_reconcile_args(wh, evidence), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        waiting = 0
        with wh.connect() as watcher:
            while not waiting and time.monotonic() < deadline:
                time.sleep(0.05)
                waiting = watcher.execute(
                    "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query like 'update%'"
                ).fetchone()[0]
        assert waiting, "hotjar-reconcile never reached the locked table"
        # By now it has marked answers, responses and questions in its transaction.
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        locker.rollback()
    assert wh.all_keys(deleted=True) == nothing() and evidence.exists()
