#!/usr/bin/env bash
# The project's test command (the README's second command, and what CI runs).
# Sets up .venv on first use (or when pyproject.toml changes), then runs pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/test_tap.py -x
#
# SINGER_SDK_VERSION=0.54.2 scripts/test.sh ... runs the same tests against that
# singer-sdk release, in a virtualenv of its own (.venv-singer-sdk-<version>);
# SINGER_SDK_VERSION=lowest takes the lowest release pyproject.toml allows.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
SDK_PIN=()
if [ -n "${SINGER_SDK_VERSION:-}" ]; then
    version=$SINGER_SDK_VERSION
    if [ "$version" = lowest ]; then
        version=$(sed -n 's/^ *"singer-sdk\[msgspec\]>=\([0-9.]*\),.*/\1/p' pyproject.toml | head -n 1)
        [ -n "$version" ] || { echo "error: no singer-sdk lower bound found in pyproject.toml" >&2; exit 2; }
    fi
    VENV=".venv-singer-sdk-$version"
    SDK_PIN=("singer-sdk[msgspec,testing]==$version")
fi
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    echo "Installing tap-hotjar and its test dependencies into $VENV ..." >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev]' "${SDK_PIN[@]}"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi
# The checkout's own packages are installed editable, so nothing compiled them; where
# PYTHONDONTWRITEBYTECODE is set (CI, many images) every tap the tests start would compile
# them from source again (0.5 s of CPU a start instead of 0.35). compileall skips what is
# up to date; Python ignores a stale file after an edit.
"$VENV/bin/python" -m compileall -q tap_hotjar hotjar_simulator >/dev/null
# --- chromium, for the report's browser test (tests/test_report.py) ------------
# Debian's package, installed when missing and this machine can (root with apt-get,
# as on CI's fresh machines); Playwright drives it and downloads no browser.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "Installing chromium (Debian's package) for the report's browser test ..." >&2
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2; then
        echo "warning: could not install chromium: tests/test_report.py skips (fails under CI=true)" >&2
    fi
fi
# --- end of chromium --------------------------------------------------------------
if [ -n "${SINGER_SDK_VERSION:-}" ]; then
    echo "singer-sdk $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("singer-sdk"))') in $VENV" >&2
fi

exec "$VENV/bin/python" -m pytest "$@"
