#!/usr/bin/env bash
# Author:  Cerebro team
# Date:    2026-11-24
# Subject: Make sure RabbitMQ (broker) and Redis (task results) are installed and listening on 127.0.0.1.
# Tagline: Check the post office is open before mailing anything.
#
# Idempotent: installs rabbitmq-server / redis-server with apt-get when absent, and starts them
# (as root, bound to 127.0.0.1) only when nothing listens on 5672 / 6379 yet.
set -euo pipefail

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! command -v rabbitmq-server >/dev/null 2>&1 && [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
  echo "ensure-rabbitmq: installing rabbitmq-server"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server >/dev/null; }
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "ensure-rabbitmq: installing redis-server (Celery result backend)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null; }
fi

# scripts/run.sh installs only: supervisord runs RabbitMQ and Redis when none answers.
if [ "${CEREBRO_INSTALL_ONLY:-0}" = 1 ]; then
  exit 0
fi

if listening 5672; then
  echo "ensure-rabbitmq: RabbitMQ already listening on 127.0.0.1:5672"
else
  echo "ensure-rabbitmq: starting RabbitMQ on 127.0.0.1:5672"
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 ERL_EPMD_ADDRESS=127.0.0.1 \
    /usr/lib/rabbitmq/bin/rabbitmq-server -detached
  for _ in $(seq 1 120); do listening 5672 && break; sleep 0.5; done
  listening 5672 || { echo "ensure-rabbitmq: RabbitMQ did not start" >&2; exit 1; }
  sleep 1  # the listener opens a moment before logins are accepted
fi

if listening 6379; then
  echo "ensure-rabbitmq: Redis already listening on 127.0.0.1:6379"
else
  echo "ensure-rabbitmq: starting Redis on 127.0.0.1:6379"
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes >/dev/null
  for _ in $(seq 1 40); do listening 6379 && break; sleep 0.25; done
  listening 6379 || { echo "ensure-rabbitmq: Redis did not start" >&2; exit 1; }
fi
