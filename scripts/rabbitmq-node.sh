#!/usr/bin/env bash
# Author:  Cerebro team
# Date:    2026-11-24
# Subject: Run a private RabbitMQ node in the foreground for supervisord (program "rabbitmq").
# Tagline: A post office of our own, with its own keys.
#
# Everything the node owns lives under $CEREBRO_RABBITMQ_DIR: its HOME (own .erlang.cookie), data
# (mnesia), logs, config and enabled plugins. Node name cerebro-<port>@localhost, AMQP on
# 127.0.0.1:$CEREBRO_RABBITMQ_PORT, distribution on $CEREBRO_RABBITMQ_DIST_PORT, the epmd that
# supervisord runs on $CEREBRO_EPMD_PORT (waited for, so the node never spawns a stray epmd of its
# own), management UI on 127.0.0.1:$CEREBRO_RABBITMQ_MANAGEMENT_PORT. Works as root or as any user
# (the Docker image's non-root user): /usr/lib/rabbitmq/bin/rabbitmq-server, not Debian's
# /usr/sbin wrapper that switches to the rabbitmq user. It traps SIGTERM and stops cleanly.
set -euo pipefail
: "${CEREBRO_RABBITMQ_PORT:?}" "${CEREBRO_RABBITMQ_DIST_PORT:?}" "${CEREBRO_EPMD_PORT:?}"
: "${CEREBRO_RABBITMQ_MANAGEMENT_PORT:?}" "${CEREBRO_RABBITMQ_DIR:?}"
SERVER=${RABBITMQ_SERVER_BIN:-/usr/lib/rabbitmq/bin/rabbitmq-server}
dir=$CEREBRO_RABBITMQ_DIR
mkdir -p "$dir/home" "$dir/mnesia" "$dir/log"
if [ ! -s "$dir/home/.erlang.cookie" ]; then
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F' > "$dir/home/.erlang.cookie")
fi
chmod 400 "$dir/home/.erlang.cookie"
cat > "$dir/rabbitmq.conf" <<CONF
listeners.tcp.default = $CEREBRO_RABBITMQ_PORT
management.tcp.ip = 127.0.0.1
management.tcp.port = $CEREBRO_RABBITMQ_MANAGEMENT_PORT
CONF
echo '[rabbitmq_management].' > "$dir/enabled_plugins"

# wait (up to 15 s) for supervisord's epmd
# A node left over from an earlier start of this program (its wrapper was killed with
# kill -9, so the Erlang VM lived on, orphaned) holds the ports: stop it before starting.
stale=""
for proc in /proc/[0-9]*; do
  if tr '\0' '\n' < "$proc/environ" 2>/dev/null | grep -qx "RABBITMQ_MNESIA_BASE=$dir/mnesia"; then
    stale="$stale ${proc#/proc/}"
  fi
done
if [ -n "$stale" ]; then
  echo "rabbitmq-node: stopping a node left over from an earlier start (pids$stale)" >&2
  kill -TERM $stale 2>/dev/null || true
  for _ in $(seq 1 100); do
    alive=""
    for pid in $stale; do [ -d "/proc/$pid" ] && alive="$alive $pid"; done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  [ -n "$alive" ] && kill -KILL $alive 2>/dev/null || true
fi
for _ in $(seq 1 75); do
  (exec 3<>"/dev/tcp/127.0.0.1/$CEREBRO_EPMD_PORT") 2>/dev/null && break
  sleep 0.2
done

erl_args="-kernel inet_dist_use_interface {127,0,0,1}"
export HOME="$dir/home" \
  RABBITMQ_NODENAME="cerebro-$CEREBRO_RABBITMQ_PORT@localhost" \
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
  RABBITMQ_NODE_PORT="$CEREBRO_RABBITMQ_PORT" \
  RABBITMQ_DIST_PORT="$CEREBRO_RABBITMQ_DIST_PORT" \
  ERL_EPMD_PORT="$CEREBRO_EPMD_PORT" \
  ERL_EPMD_ADDRESS=127.0.0.1 \
  RABBITMQ_MNESIA_BASE="$dir/mnesia" \
  RABBITMQ_LOG_BASE="$dir/log" \
  RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
  RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
  RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="$erl_args" \
  RABBITMQ_CTL_ERL_ARGS="$erl_args"
exec "$SERVER"
