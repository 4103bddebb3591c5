#!/usr/bin/env bash
# Run the whole test suite: installs the Python test dependencies (pinned by
# constraints.txt) into .venv, the npm packages of the interop tests and the
# offline manifest validators, then runs pytest. Needs python3 >= 3.11, node
# and npm, and PostgreSQL server binaries (the suite starts its own cluster).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[test]"

for folder in tests/interop tests/interop/oidc; do
    if [ -f "$folder/package-lock.json" ]; then
        npm ci --prefix "$folder" --no-audit --no-fund --loglevel=error
    fi
done

bash deploy/install-validators.sh

exec .venv/bin/pytest "$@"
