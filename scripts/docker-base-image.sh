#!/usr/bin/env bash
# Author:  Cerebro team
# Date:    2026-11-29
# Subject: A local stand-in for python:3.11-slim-bookworm, for a Docker engine that reaches no registry.
# Tagline: No Docker Hub? Bake the bread at home.
#
# Makes a Debian bookworm root file system with debootstrap (Debian's package mirror is all it
# needs), puts in what python:3.11-slim-bookworm gives the Dockerfile (Python 3.11 with venv and
# pip, `python`/`python3`/`pip` in /usr/local/bin, PATH and LANG as that image sets them), copies
# in this machine's extra CA certificates (outgoing TLS is intercepted here: pip and apt inside
# the build must trust the interceptor) and imports it into the local engine (`docker import`).
# Build the image on it with scripts/docker-smoke.sh, or by hand:
#   docker build --network host --build-arg BASE_IMAGE=cerebro-base:bookworm --target deploy .
#
# Usage: bash scripts/docker-base-image.sh [IMAGE]      (root; default IMAGE cerebro-base:bookworm)
# Environment:
#   DEBIAN_MIRROR   Debian mirror (default http://deb.debian.org/debian)
#   DEBIAN_SECURITY security mirror (default http://deb.debian.org/debian-security)
#   EXTRA_CA_DIR    folder of extra *.crt to trust (default /usr/local/share/ca-certificates)
#   FORCE=1         make it again even when the engine has IMAGE already
set -euo pipefail

IMAGE=${1:-${CEREBRO_BASE_IMAGE:-cerebro-base:bookworm}}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
CA_DIR=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
SUITE=bookworm

say() { printf '[docker-base-image] %s\n' "$*"; }
die() { printf '[docker-base-image] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "debootstrap needs root"
command -v debootstrap >/dev/null || die "no debootstrap (apt-get install -y debootstrap)"
command -v docker >/dev/null || die "no docker client"
docker info >/dev/null 2>&1 || die "no Docker engine answers (start dockerd first)"
if [ -z "${FORCE:-}" ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  say "$IMAGE exists already (FORCE=1 to make it again)"
  exit 0
fi

WORK=$(mktemp -d /tmp/cerebro-base.XXXXXX)
ROOT=$WORK/rootfs
cleanup() {
  # a failed chroot step can leave these mounted: never delete through a mount
  for mount in "$ROOT/proc" "$ROOT/dev/pts" "$ROOT/dev"; do
    if mountpoint -q "$mount" 2> /dev/null; then umount -l "$mount"; fi
  done
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

started=$(date +%s)
say "debootstrap $SUITE from $MIRROR into $ROOT"
debootstrap --variant=minbase --include=ca-certificates,python3,python3-venv,python3-pip \
  "$SUITE" "$ROOT" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
  || { tail -30 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log above)"; }

say "apt sources as the official image has them (bookworm, -updates, -security)"
rm -f "$ROOT/etc/apt/sources.list"
cat > "$ROOT/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

count=0
for cert in "$CA_DIR"/*.crt; do
  [ -e "$cert" ] || continue
  cp "$cert" "$ROOT/usr/local/share/ca-certificates/"
  count=$((count + 1))
done
say "trusting $count extra CA certificate(s) from $CA_DIR"
chroot "$ROOT" update-ca-certificates > /dev/null 2>&1 || die "update-ca-certificates failed"
# pip trusts its own certifi bundle, not the system's: point it at the system's (which now
# holds the extra CAs), for every pip of the image, the venv's included
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$ROOT/etc/pip.conf"

say "python, python3, pip, pip3 in /usr/local/bin (as python:3.11-slim-bookworm has them)"
for name in python python3; do ln -sf /usr/bin/python3 "$ROOT/usr/local/bin/$name"; done
for name in pip pip3; do ln -sf /usr/bin/pip3 "$ROOT/usr/local/bin/$name"; done
# the official image's Python is not Debian's: nothing marks it externally managed
rm -f "$ROOT"/usr/lib/python3*/EXTERNALLY-MANAGED
chroot "$ROOT" python3 -c 'import ensurepip, sys, venv; assert sys.version_info[:2] == (3, 11)'

chroot "$ROOT" apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/log/* "$ROOT"/tmp/*

say "docker import as $IMAGE"
tar -C "$ROOT" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PYTHON_VERSION=3.11' \
  --change 'CMD ["python3"]' \
  --message "Debian $SUITE (debootstrap) with Python 3.11, venv, pip and this machine's CAs" \
  - "$IMAGE" > /dev/null
version=$(docker run --rm --network none "$IMAGE" python --version)
size=$(docker image inspect --format '{{.Size}}' "$IMAGE")
say "made $IMAGE ($version, $((size / 1024 / 1024)) MB) in $(( $(date +%s) - started ))s"
