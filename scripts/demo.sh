#!/usr/bin/env bash
# Sets up geowarn and runs the demo county on the embedded SQLite database at var/demo.db,
# served on http://127.0.0.1:8000 (log in as admin / see the printed demo users).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh core
export GEOWARN_DATABASE_URL="${GEOWARN_DATABASE_URL:-sqlite:///var/demo.db}"
exec .venv/bin/geowarn demo "$@"
