#!/usr/bin/env bash
# The project's test command (the README's second command, and what CI runs).
# Sets up .venv on first use (or when pyproject.toml changes), then runs pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/test_tap.py -x
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    echo "Installing tap-hotjar and its test dependencies into .venv ..." >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi

exec .venv/bin/python -m pytest "$@"
