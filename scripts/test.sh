#!/usr/bin/env bash
# Set up Cerebro and run the whole test suite (real RabbitMQ, Kafka-compatible
# broker, SMTP and HTTP servers, all on 127.0.0.1). Extra arguments go to pytest.
# Usage: bash scripts/test.sh [pytest options]
# The tests run in CEREBRO_TEST_PROCESSES processes (default 2: most of a test is waiting for
# real servers; on two cores the suite took 10.6 minutes instead of 19.9 in one process), a test
# file per process at a time (its module fixtures start once); 0 runs them all in this process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=${CEREBRO_VENV:-.venv}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "$VENV/bin/python" -m pytest -n "${CEREBRO_TEST_PROCESSES:-2}" --dist loadfile "$@"
