"""`hotjar-reconcile`: apply a reconciliation run's evidence to a warehouse (docs/deletions.md).

    hotjar-reconcile --warehouse URL --evidence PATH [--raw-schema hotjar]
                     [--models-schema hotjar_analytics ...] [--hard-delete] [--dry-run]

Every option can come from the environment (`HOTJAR_RECONCILE_<OPTION>`, as Meltano
exports the utility's settings). All changes are one transaction: killed or failing, the
command changes nothing. The evidence is renamed `<PATH>.applied` once applied, so a rerun
applies nothing twice. Exit status: 0 done (or nothing to do), 1 failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import typing as t
from pathlib import Path

from tap_hotjar.errors import EXIT_FAILED, EXIT_OK, HotjarError, redact
from tap_hotjar.reconciliation import read_evidence
from tap_hotjar.warehouse.connection import URL_FORMS, connect
from tap_hotjar.warehouse.reconcile import Reconciliation
from tap_hotjar.warehouse.tables import MODELS_SCHEMA, RAW_SCHEMA, add_layout_options, layout_from

if t.TYPE_CHECKING:
    from collections.abc import Sequence

    from tap_hotjar.warehouse.reconcile import Outcome
    from tap_hotjar.warehouse.tables import Layout

PROG = "hotjar-reconcile"
ENV_PREFIX = "HOTJAR_RECONCILE_"
EXIT_USAGE = 2
APPLIED_SUFFIX = ".applied"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(ENV_PREFIX + name, "").strip()
    return value or default


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Remove from the warehouse what Hotjar no longer has, on the evidence of a finished "
            "reconciliation run (tap-hotjar with reconcile_evidence_path)."
        ),
    )
    p.add_argument("--warehouse", default=_env("WAREHOUSE"), help=f"{URL_FORMS} (or ${ENV_PREFIX}WAREHOUSE)")
    p.add_argument("--evidence", default=_env("EVIDENCE"), help=f"the run's evidence file (or ${ENV_PREFIX}EVIDENCE)")
    # Defaults from the environment, as Meltano exports the utility's settings.
    add_layout_options(
        p,
        raw_default=_env("RAW_SCHEMA", RAW_SCHEMA) or RAW_SCHEMA,
        models_default=_env("MODELS_SCHEMA", MODELS_SCHEMA) or MODELS_SCHEMA,
    )
    p.add_argument(
        "--hard-delete",
        action="store_true",
        default=_truthy(_env("HARD_DELETE")),
        help="delete raw rows instead of marking them deleted (_sdc_deleted_at)",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would be removed; change nothing")
    return p


def _say(text: str = "") -> None:
    print(redact(text), flush=True)  # noqa: T201


def _fail(text: str, code: int = EXIT_FAILED) -> int:
    sys.stdout.flush()
    print(f"{PROG}: error: {' '.join(redact(text).split())}", file=sys.stderr, flush=True)  # noqa: T201
    return code


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "nothing"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage line
        return int(exc.code or 0) and EXIT_USAGE
    if not args.warehouse:
        return _fail(f"--warehouse is required: {URL_FORMS}", EXIT_USAGE)
    if not args.evidence:
        return _fail(
            "--evidence is required: the file a reconciliation run wrote (reconcile_evidence_path)", EXIT_USAGE
        )
    evidence_path = Path(args.evidence)
    applied_path = evidence_path.with_name(evidence_path.name + APPLIED_SUFFIX)
    layout = layout_from(args)
    try:
        if not evidence_path.exists() and applied_path.exists():
            _say(f"Nothing to apply: the evidence at {evidence_path} was applied already ({applied_path.name}).")
            return EXIT_OK
        evidence = read_evidence(evidence_path)
        with connect(args.warehouse) as conn:
            _say(
                f"Reconciling {conn.url.display} (raw tables in {layout.raw_schema}"
                f"{', models in ' + ', '.join(layout.models_schemas) if layout.models_schemas else ''}) with the run"
                f" of {evidence.started_at:%Y-%m-%d %H:%M:%S} UTC to {evidence.finished_at:%H:%M:%S}:"
                f" {len(evidence.sites)} site(s), {len(evidence.surveys)} survey(s)."
            )
            now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
            with conn.transaction(commit=not args.dry_run):
                outcome = Reconciliation(conn, layout, evidence).apply(
                    erase=args.hard_delete, dry_run=args.dry_run, now=now
                )
    except HotjarError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted: nothing was changed (the transaction was rolled back)", 130)
    except Exception as exc:  # every failure is one line: the transaction was rolled back
        if os.environ.get("TAP_HOTJAR_TRACEBACK"):
            raise
        return _fail(f"{type(exc).__name__}: {exc}; nothing was changed (the transaction was rolled back)")
    if not args.dry_run:
        os.replace(evidence_path, applied_path)
    _report(outcome, dry_run=args.dry_run, hard_delete=args.hard_delete, layout=layout)
    return EXIT_OK


def _report(outcome: Outcome, *, dry_run: bool, hard_delete: bool, layout: Layout) -> None:
    for line in outcome.left_alone:
        _say(f"WARNING: {line}")
    _say(
        f"Compared with Hotjar: {outcome.sites_checked} site(s) listed completely, "
        f"{outcome.surveys_checked} survey(s) whose responses were read and loaded completely."
    )
    _say(f"Hotjar no longer has: {_counts(outcome.gone)}.")
    if dry_run:
        _say("Dry run: nothing was changed.")
        return
    verb = "Deleted" if hard_delete else "Marked deleted (_sdc_deleted_at)"
    _say(f"{verb} in {layout.raw_schema}: {_counts(outcome.removed.raw)}.")
    if layout.models_schemas:
        _say(f"Removed from the models: {_counts(outcome.removed.models)} (the next dbt build rebuilds them).")


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
