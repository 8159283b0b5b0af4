#!/usr/bin/env bash
# Author:  Cerebro team
# Date:    2026-11-24
# Subject: Stop Cerebro cleanly: supervisord stops every program, then exits; nothing is left behind.
# Tagline: Lights off, doors locked, nobody left inside.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${CEREBRO_VENV:-.venv}/bin/cerebro" down "$@"
