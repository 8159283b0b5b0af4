#!/usr/bin/env bash
# Set up Cerebro, build every module's model that is missing from the data
# volume, then serve the REST API (Ctrl-C stops it).
# Usage: bash scripts/run.sh [cerebro serve options]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=${CEREBRO_VENV:-.venv}
VOLUME=${CEREBRO_DATA_VOLUME:-data_volume}
for expose in modules/*/expose.py; do
  module=$(basename "$(dirname "$expose")")
  if [ ! -f "$VOLUME/$module/current.json" ]; then
    echo "[run] building $module (no model in $VOLUME/$module yet)"
    "$VENV/bin/cerebro" build "$module"
  fi
done
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "$VENV/bin/cerebro" serve "$@"
