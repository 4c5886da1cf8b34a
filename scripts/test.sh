#!/usr/bin/env bash
# The whole test suite: lint, types, and every test on SQLite and PostgreSQL/PostGIS.
# Installs and starts what it needs first (scripts/setup.sh test). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
export GEOWARN_MODE=test
# Cheap Argon2id parameters for the many users the fixtures create (refused outside test mode).
export GEOWARN_PASSWORD_PROFILE=fast
echo "== ruff" >&2
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== mypy" >&2
.venv/bin/mypy
echo "== pytest" >&2
.venv/bin/pytest -p no:cacheprovider "$@"
