#!/usr/bin/env bash
# The whole pipeline in one command, no credentials and no database server:
#
#   Hotjar API simulator -> meltano run tap-hotjar target-duckdb dbt-duckdb:build hotjar-report:duckdb
#                        -> output/warehouse.duckdb (raw tables + dbt models)
#                        -> output/report.html (NPS, CSAT and responses per week)
#
# First run: installs Meltano and the plugins (once), starts the simulator,
# extracts everything, builds and tests the dbt models (transform/), writes the
# report of the models (output/report.html: charts and tables, opens offline),
# prints rows per table and NPS per survey from the hotjar__nps model, stops the
# simulator.
# Every later run is incremental: the simulator first receives new responses,
# and Meltano's state (one bookmark per survey) makes the tap fetch only what is
# new; the models are rebuilt from the tables.
#
#   scripts/demo.sh                 into DuckDB (output/warehouse.duckdb)
#   scripts/demo.sh postgres        into PostgreSQL instead: target-postgres as
#                                   configured in meltano.yml (127.0.0.1:5432,
#                                   database test, schema hotjar; models in
#                                   hotjar_analytics), TARGET_POSTGRES_* variables
#                                   override it (the dbt step follows them)
#   scripts/demo.sh [postgres] --reset
#                                   start over: drop the demo's tables and models,
#                                   forget state
#
# Environment: DEMO_NEW_RESPONSES (new responses per survey on each rerun, default 5),
# PYTHON (interpreter for Meltano's virtualenv and the simulator, default python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TARGET=duckdb
RESET=0
for arg in "$@"; do
    case "$arg" in
        duckdb | postgres) TARGET="$arg" ;;
        --reset) RESET=1 ;;
        -h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: scripts/demo.sh [duckdb|postgres] [--reset]" >&2; exit 2 ;;
    esac
done

OUT="$ROOT/output"
LOADER="target-$TARGET"
DBT="dbt-$TARGET"
REPORT="hotjar-report:$TARGET"
STATE_ID="dev:tap-hotjar-to-$LOADER"
RUNS_FILE="$OUT/.demo-runs-$TARGET"
NEW_PER_SURVEY="${DEMO_NEW_RESPONSES:-5}"
PY="${PYTHON:-python3}"
DB="$OUT/warehouse.duckdb"

say() { printf '%s\n' "$*"; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

T0=$EPOCHREALTIME
say "== tap-hotjar demo: Hotjar API simulator -> Meltano -> $TARGET =="

# --- Meltano and the three plugins this pipeline needs ----------------------
# shellcheck source=scripts/_meltano_env.sh
source "$ROOT/scripts/_meltano_env.sh"
mkdir -p "$OUT"
case "$TARGET" in
    duckdb) LOADER_VENV="$ROOT/.meltano/loaders/target-duckdb/venv" ;;
    postgres) LOADER_VENV="$ROOT/.meltano/loaders/target-postgres/venv" ;;
esac
if [ ! -x "$ROOT/.meltano/extractors/tap-hotjar/venv/bin/tap-hotjar" ] ||
    [ ! -x "$LOADER_VENV/bin/$LOADER" ] ||
    [ ! -x "$ROOT/.meltano/utilities/$DBT/venv/bin/dbt_invoker" ] ||
    [ ! -x "$ROOT/.meltano/utilities/hotjar-report/venv/bin/hotjar-report" ]; then
    say "Installing plugins tap-hotjar (this checkout), $LOADER, $DBT and hotjar-report (once)..."
    if ! meltano install tap-hotjar "$LOADER" "$DBT" hotjar-report >"$OUT/meltano-install.log" 2>&1; then
        tail -n 30 "$OUT/meltano-install.log" >&2
        say "error: meltano install failed (log: output/meltano-install.log)" >&2
        exit 1
    fi
fi
say "Meltano $(meltano --version 2>/dev/null | awk '{print $NF}'), ready in $(elapsed "$T0")s"

# The report runs with the loader's own Python: it has duckdb / psycopg.
if [ "$TARGET" = duckdb ]; then
    WHERE="$DB"
    report() { "$LOADER_VENV/bin/python" scripts/_demo_report.py duckdb "$WHERE" "$@"; }
    if [ "$RESET" = 1 ]; then rm -f "$DB" "$DB.wal"; fi
else
    WHERE="$OUT/.target-postgres-config.json"
    meltano config print target-postgres 2>/dev/null >"$WHERE"
    # The dbt step reads the tables where target-postgres writes them, unless
    # DBT_POSTGRES_* say otherwise.
    eval "$("$PY" - "$WHERE" <<'EOF'
import json, os, shlex, sys
c = json.load(open(sys.argv[1]))
pairs = {"HOST": c.get("host"), "PORT": c.get("port"), "USER": c.get("user"),
         "DBNAME": c.get("database"), "SOURCE_SCHEMA": c.get("default_target_schema")}
for key, value in pairs.items():
    if value not in (None, "") and f"DBT_POSTGRES_{key}" not in os.environ:
        print(f"export DBT_POSTGRES_{key}={shlex.quote(str(value))}")
if "TARGET_POSTGRES_PASSWORD" in os.environ and "DBT_POSTGRES_PASSWORD" not in os.environ:
    print('export DBT_POSTGRES_PASSWORD="$TARGET_POSTGRES_PASSWORD"')
# The report too (its password through libpq's PGPASSWORD: never in the URL it prints).
if "HOTJAR_REPORT_POSTGRES_URL" not in os.environ and c.get("host") and c.get("database"):
    from urllib.parse import quote
    url = "postgresql://%s@%s:%s/%s" % (quote(str(c.get("user") or ""), safe=""), c["host"],
                                       c.get("port") or 5432, quote(str(c["database"]), safe=""))
    print(f"export HOTJAR_REPORT_POSTGRES_URL={shlex.quote(url)}")
if "TARGET_POSTGRES_PASSWORD" in os.environ and "PGPASSWORD" not in os.environ:
    print('export PGPASSWORD="$TARGET_POSTGRES_PASSWORD"')
EOF
)"
    report() { "$LOADER_VENV/bin/python" scripts/_demo_report.py postgres "$WHERE" "$@"; }
fi
# The report reads the models where the dbt utility builds them.
DEMO_MODELS_SCHEMA=$(meltano config print "$DBT" 2>/dev/null |
    "$PY" -c 'import json, sys; print(json.load(sys.stdin).get("schema") or "")')
export DEMO_MODELS_SCHEMA
export HOTJAR_REPORT_SCHEMA="${HOTJAR_REPORT_SCHEMA:-$DEMO_MODELS_SCHEMA}"
if [ "$TARGET" = postgres ] && [ "$RESET" = 1 ]; then report reset; fi
if [ "$RESET" = 1 ]; then rm -f "$RUNS_FILE"; fi

# --- Which run is this? -------------------------------------------------------
BEFORE="$OUT/.counts-before-$TARGET.json"
report counts >"$BEFORE"
if [ "$(cat "$BEFORE")" = "{}" ] || [ ! -f "$RUNS_FILE" ]; then
    # A new (or unknown) warehouse must not start from old bookmarks.
    meltano state clear --force "$STATE_ID" >/dev/null 2>&1 || true
    RUN=1
else
    RUN=$(($(cat "$RUNS_FILE") + 1))
fi

# --- The simulator ------------------------------------------------------------
SIM_CONFIG="$OUT/simulator-config.json"
rm -f "$SIM_CONFIG"
"$PY" -m hotjar_simulator --port 0 --seed 0 --config-out "$SIM_CONFIG" >"$OUT/simulator.log" 2>&1 &
SIM_PID=$!
stop_simulator() {
    if kill -0 "$SIM_PID" 2>/dev/null; then
        kill "$SIM_PID" 2>/dev/null || true
        wait "$SIM_PID" 2>/dev/null || true
    fi
}
trap stop_simulator EXIT
trap 'exit 130' INT TERM
for _ in $(seq 1 100); do
    [ -s "$SIM_CONFIG" ] && break
    kill -0 "$SIM_PID" 2>/dev/null || break
    sleep 0.1
done
if [ ! -s "$SIM_CONFIG" ]; then
    cat "$OUT/simulator.log" >&2
    say "error: the simulator did not start (log: output/simulator.log)" >&2
    exit 1
fi

# The tap reads its settings from TAP_HOTJAR_* (Meltano's names for them).
eval "$("$PY" - "$SIM_CONFIG" <<'EOF'
import json, shlex, sys
c = json.load(open(sys.argv[1]))
for key in ("api_url", "client_id", "client_secret"):
    print(f"export TAP_HOTJAR_{key.upper()}={shlex.quote(str(c[key]))}")
print(f"export TAP_HOTJAR_SITE_IDS={shlex.quote(json.dumps(c['site_ids']))}")
EOF
)"
say "Simulator: $TAP_HOTJAR_API_URL (seed 0), sites $TAP_HOTJAR_SITE_IDS"

# The simulator starts from the same seeded data every time. To look like an
# account that kept receiving responses, it replays one batch of new responses
# per earlier run: the last batch is the one this run has not seen yet.
NEW_RESPONSES=0
if [ "$RUN" -gt 1 ]; then
    NEW_RESPONSES=$("$PY" - "$TAP_HOTJAR_API_URL" "$((RUN - 1))" "$NEW_PER_SURVEY" <<'EOF'
import json, sys, urllib.request
url, batches, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
total = 0
for _ in range(batches):
    req = urllib.request.Request(
        f"{url}/_sim/add-responses", data=json.dumps({"count": count}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        total = json.load(resp)["total"]
print(total)
EOF
)
fi

# --- The pipeline -------------------------------------------------------------
say ""
if [ "$RUN" -eq 1 ]; then
    say "Run 1: full extraction (no Meltano state for $STATE_ID)."
else
    say "Run $RUN: incremental, from Meltano's state $STATE_ID (one bookmark per survey)."
    say "  The simulator has $NEW_RESPONSES new responses since the last run ($NEW_PER_SURVEY per survey with responses)."
fi
LOG="$OUT/demo-$TARGET-run-$RUN.log"
say "  \$ meltano run tap-hotjar $LOADER $DBT:build $REPORT    (log: ${LOG#"$ROOT"/})"
T1=$EPOCHREALTIME
if ! meltano run tap-hotjar "$LOADER" "$DBT:build" "$REPORT" >"$LOG" 2>&1; then
    tail -n 40 "$LOG" >&2
    say "error: the pipeline failed (log: ${LOG#"$ROOT"/})" >&2
    exit 1
fi
say "  done in $(elapsed "$T1")s"
echo "$RUN" >"$RUNS_FILE"

PAGES=$("$PY" - "$TAP_HOTJAR_API_URL" <<'EOF' 2>/dev/null || echo "?"
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/_sim/counts", timeout=10) as resp:
    print(json.load(resp)["responses"])
EOF
)
say "  The tap requested $PAGES pages of survey responses from the API."
BOOKMARKS=$(meltano state get "$STATE_ID" 2>/dev/null | "$PY" -c '
import json, sys
parts = json.load(sys.stdin)["singer_state"]["bookmarks"]["survey_responses"].get("partitions", [])
marks = [p["replication_key_value"] for p in parts if "replication_key_value" in p]
print(f"{len(marks)} survey bookmarks, newest {max(marks)}" if marks else "no bookmarks")
' 2>/dev/null || echo "unreadable")
say "  Meltano state now: $BOOKMARKS"

if [ "$TARGET" = postgres ]; then
    # target-postgres creates timestamp columns without time zone; convert them
    # once (docs/pipelines.md, Into PostgreSQL). Later runs load into the converted columns.
    CONVERTED=$(report timestamptz | wc -l)
    if [ "$CONVERTED" -gt 0 ]; then
        say "  Converted $CONVERTED columns to timestamp with time zone (scripts/postgres_timestamptz.sql)."
    fi
fi

report report "$BEFORE"
rm -f "$BEFORE"

say ""
if [ "$TARGET" = duckdb ]; then
    say "Query it:  $LOADER_VENV/bin/python -c \"import duckdb; duckdb.connect('output/warehouse.duckdb', read_only=True).sql('from $DEMO_MODELS_SCHEMA.hotjar__nps order by week_start desc limit 5').show()\""
else
    HINT=$("$PY" - "$WHERE" "$DEMO_MODELS_SCHEMA" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
query = '"select * from %s.hotjar__nps order by week_start desc limit 5"' % sys.argv[2]
print("psql -h %s -p %s -U %s -d %s -c %s"
      % (c.get("host"), c.get("port"), c.get("user"), c.get("database"), query))
EOF
)
    say "Query it:  $HINT"
fi
REPORT_FILE=$(sed -n 's/.*hotjar-report: wrote \(.*\) ([0-9]* surveys.*/\1/p' "$LOG" | tail -n 1)
say "Open the report (charts and tables of the models, works offline):  ${REPORT_FILE:-output/report.html}"
RERUN="scripts/demo.sh"
[ "$TARGET" = postgres ] && RERUN="scripts/demo.sh postgres"
say "Run $RERUN again for an incremental run; $RERUN --reset to start over."
say "Total: $(elapsed "$T0")s"
