#!/usr/bin/env bash
# Set up Cerebro and run the whole test suite (real RabbitMQ, Kafka-compatible
# broker, SMTP and HTTP servers, all on 127.0.0.1). Extra arguments go to pytest.
# Usage: bash scripts/test.sh [pytest options]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=${CEREBRO_VENV:-.venv}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "$VENV/bin/python" -m pytest "$@"
