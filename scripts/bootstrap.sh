#!/usr/bin/env bash
# Create .venv with Python 3.12 (if absent) and install the project with its dev and docs tools.
# Idempotent: reinstalls only when pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
    local candidates=(python3.12)
    for d in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 \
             /usr/local/bin/python3.12 /usr/bin/python3.12; do
        candidates+=("$d")
    done
    for c in "${candidates[@]}"; do
        if "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

if [ ! -x .venv/bin/python ]; then
    py=$(find_python) || { echo "error: python3.12 not found (ArviZ 1.x needs Python 3.12)" >&2; exit 1; }
    echo "creating .venv with $py" >&2
    "$py" -m venv .venv
fi

stamp=.venv/.htmp-infer-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "installing htmp-infer and its dependencies into .venv" >&2
    .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
    .venv/bin/python -m pip install --quiet -e ".[dev,docs]" 2> >(grep -v "is ignored: it is neither a file" >&2)
    echo "$want" > "$stamp"
fi
