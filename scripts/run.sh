#!/usr/bin/env bash
# Author:  Cerebro team
# Date:    2026-11-24
# Subject: One command brings Cerebro up: set up, build missing models, supervisord, wait until ready.
# Tagline: Curtain up only when every player is on stage.
#
# Installs what is missing (scripts/setup.sh: venv, project, RabbitMQ/Redis packages), builds every
# module whose model is not in the data volume, starts supervisord with supervisord.conf (RabbitMQ,
# Redis and the development Kafka broker only when none answers at the configured address, and the
# main-app simulator when no main app answers at CEREBRO_MAIN_APP_URL), waits until every program
# is really ready and prints where each UI and endpoint is (and where each password is).
# Stop everything with: bash scripts/down.sh.   Usage: bash scripts/run.sh [cerebro up options]
set -euo pipefail
cd "$(dirname "$0")/.."
CEREBRO_INSTALL_ONLY=1 bash scripts/setup.sh
VENV=${CEREBRO_VENV:-.venv}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "$VENV/bin/cerebro" up "$@"
