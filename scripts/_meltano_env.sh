# shellcheck shell=bash
# Sourced by scripts/demo.sh (and run by the end-to-end tests): makes Meltano
# available for this checkout and puts it first on PATH.
#
# Meltano gets a virtualenv of its own (.meltano/meltano-venv, ignored by git),
# apart from the project's dev virtualenv: Meltano pins its own dependency
# ranges, and the plugins (the tap, the targets) get one virtualenv each under
# .meltano/ anyway. Reruns find the venv in place and cost nothing.
#
# Overrides: MELTANO_VENV (where to put it), PYTHON (interpreter to build it with).

MELTANO_PIN="4.4.1"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MELTANO_VENV="${MELTANO_VENV:-$REPO_ROOT/.meltano/meltano-venv}"
PYTHON="${PYTHON:-python3}"

_meltano_ready() {
    [ -x "$MELTANO_VENV/bin/meltano" ] &&
        [ "$(cat "$MELTANO_VENV/.pinned" 2>/dev/null)" = "meltano==$MELTANO_PIN" ]
}

if ! _meltano_ready; then
    if ! command -v "$PYTHON" >/dev/null 2>&1; then
        echo "error: $PYTHON not found; Meltano needs Python 3.10 or newer" >&2
        return 1
    fi
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
        echo "error: Meltano $MELTANO_PIN needs Python 3.10 or newer; $PYTHON is $("$PYTHON" -V 2>&1)" >&2
        return 1
    fi
    echo "Installing Meltano $MELTANO_PIN into ${MELTANO_VENV#"$REPO_ROOT"/} (once)..." >&2
    rm -rf "$MELTANO_VENV"
    mkdir -p "$(dirname "$MELTANO_VENV")"
    if ! "$PYTHON" -m venv "$MELTANO_VENV" >&2; then
        echo "error: could not create a virtualenv with $PYTHON -m venv (on Debian/Ubuntu: apt-get install python3-venv)" >&2
        return 1
    fi
    if ! "$MELTANO_VENV/bin/python" -m pip install --disable-pip-version-check \
        "meltano==$MELTANO_PIN" >"$MELTANO_VENV/install.log" 2>&1; then
        tail -n 20 "$MELTANO_VENV/install.log" >&2
        echo "error: pip could not install meltano==$MELTANO_PIN (log: $MELTANO_VENV/install.log)" >&2
        return 1
    fi
    echo "meltano==$MELTANO_PIN" >"$MELTANO_VENV/.pinned"
fi

export PATH="$MELTANO_VENV/bin:$PATH"
# Meltano installs plugins with uv, which writes no bytecode unless asked; where
# PYTHONDONTWRITEBYTECODE is set (many Docker images and CI machines set it) nothing
# writes it later either, and every start of a plugin compiles its imports from
# source: 3.8 s of CPU for `dbt --version`, 1.5 s with bytecode; target-postgres 1.6 s
# and 0.6 s. uv's own switch, for every `meltano install` from here.
export UV_COMPILE_BYTECODE=1
# Belt and braces beside meltano.yml: no telemetry, no update check, even for
# a project file someone edited.
export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false
export MELTANO_CLI_DISABLE_VERSION_CHECK=1
export MELTANO_PROJECT_ROOT="$REPO_ROOT"
