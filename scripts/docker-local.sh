#!/usr/bin/env bash
# A real Docker engine and locally made base images, for `make test-compose` on a machine that
# cannot pull from a registry. Idempotent: a second run finds the engine answering and the base
# images present and returns in about a second.
#
#   scripts/docker-local.sh            # prints `export DOCKER_HOST=...` and the base image names
#
# Engine: uses $DOCKER_HOST when an engine answers there; otherwise starts dockerd (its own
# socket, data root and bridge addresses) under $CPT_DOCKER_CACHE, as root. Storage: overlay2
# when this kernel mounts overlayfs here, else vfs (which copies every layer, and every
# metadata step of the classic builder, in full: several times slower and larger).
# Base images (made once, kept in that data root and as a rootfs tarball beside it, so a later run
# on the same machine rebuilds nothing):
#   cpt-local/base:bookworm   Debian 12 (debootstrap minbase) + python3.11, venv, pip, redis-server:
#                             stands in for python:3.11-slim-bookworm and redis:7.4-alpine
#   cpt-local/node:bookworm   the same + this machine's Node.js/npm: stands in for node:22-bookworm-slim
#   cpt-local/torch:cpu       the base + the lock's torch, CPU build: stands in for pytorch/pytorch
# The images the compose files build (docker/*.Dockerfile) are the users' own; only their FROM
# lines get these names (build args, see docker-compose.yml).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
say() { echo "docker-local: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${CPT_DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cpt-panel-docker}
SOCK=${CPT_DOCKER_SOCK:-$CACHE/sock}
# Bridge addresses of its own, so it does not collide with another engine on this machine.
BIP=${CPT_DOCKER_BIP:-10.231.0.1/24}
POOL=${CPT_DOCKER_POOL:-10.232.0.0/16}
SUITE=bookworm
# Packages of the base: Python (the API's and the worker's), venv/pip, Redis (the broker service).
PACKAGES=python3,python3-venv,python3-pip,passwd,ca-certificates,redis-server,redis-tools
RECIPE_ID=$(printf '%s|%s|v1' "$SUITE" "$PACKAGES" | sha256sum | cut -c1-12)
mkdir -p "$CACHE"

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  say "apt-get install ${need[*]}"
  as_root apt-get update -qq
  as_root apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- the engine -----------------------------------------------------------------------------
if [ -z "${DOCKER_HOST:-}" ] || ! docker version >/dev/null 2>&1; then
  export DOCKER_HOST=unix://$SOCK
  if ! docker version >/dev/null 2>&1; then
    STORAGE=${CPT_DOCKER_STORAGE:-}
    if [ -z "$STORAGE" ]; then
      T=$(mktemp -d "$CACHE/ovl.XXXXXX"); mkdir "$T/l" "$T/u" "$T/w" "$T/m"
      if as_root mount -t overlay overlay -o "lowerdir=$T/l,upperdir=$T/u,workdir=$T/w" "$T/m" 2>/dev/null; then
        as_root umount "$T/m"; STORAGE=overlay2
      else
        STORAGE=vfs
      fi
      as_root rm -rf "$T"
    fi
    say "starting dockerd ($STORAGE, data root $CACHE/root-$STORAGE, socket $SOCK)"
    mkdir -p "$CACHE/root-$STORAGE" "$CACHE/exec"
    # setsid: the engine outlives this script (and the make that ran it).
    as_root setsid dockerd --storage-driver="$STORAGE" --data-root="$CACHE/root-$STORAGE" \
      --exec-root="$CACHE/exec" --pidfile="$CACHE/pid" -H "$DOCKER_HOST" \
      --bip="$BIP" --default-address-pool "base=$POOL,size=24" \
      >"$CACHE/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 120); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
    docker version >/dev/null 2>&1 || { tail -20 "$CACHE/dockerd.log" >&2; exit 1; }
  fi
fi

have() { docker image inspect "$1" >/dev/null 2>&1; }

# --- the Debian base ------------------------------------------------------------------------
TARBALL=$CACHE/rootfs-$SUITE-$RECIPE_ID.tar
if ! have cpt-local/base:bookworm || ! have cpt-local/node:bookworm; then
  if [ ! -s "$TARBALL" ]; then
    MIRROR=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
    STAGE=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    say "debootstrap $SUITE from $MIRROR (a few minutes, once)"
    as_root debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$STAGE/rootfs" "$MIRROR" \
      >"$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
    R=$STAGE/rootfs
    # What the official python image offers: `python`/`pip` on PATH, pip may install system-wide.
    as_root ln -sf /usr/bin/python3 "$R/usr/local/bin/python"
    as_root ln -sf /usr/bin/pip3 "$R/usr/local/bin/pip"
    as_root rm -f "$R"/usr/lib/python3*/EXTERNALLY-MANAGED
    # This machine's CA bundle (its outbound TLS may be intercepted), so builds reach PyPI/npm.
    as_root cp /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/ca-certificates.crt"
    as_root rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/* "$R"/usr/share/doc \
      "$R"/usr/share/man "$R"/usr/share/locale
    as_root tar -C "$R" -cf "$TARBALL.part" .
    mv "$TARBALL.part" "$TARBALL"
    as_root rm -rf "$STAGE"
  fi
  CA=/etc/ssl/certs/ca-certificates.crt
  ENVS=(--change "ENV SSL_CERT_FILE=$CA PIP_CERT=$CA REQUESTS_CA_BUNDLE=$CA NODE_EXTRA_CA_CERTS=$CA"
    --change 'CMD ["bash"]')
  say "docker import cpt-local/base:bookworm"
  docker import "${ENVS[@]}" "$TARBALL" cpt-local/base:bookworm >/dev/null
  # Node.js: this machine's own (the official node image cannot be pulled here).
  NODE_BIN=$(command -v node)
  NPM_DIR=$(dirname "$(readlink -f "$(command -v npm)")")/..
  EXTRA=$(mktemp -d "$CACHE/node.XXXXXX")
  mkdir -p "$EXTRA/usr/local/bin" "$EXTRA/usr/local/lib/node_modules"
  cp "$NODE_BIN" "$EXTRA/usr/local/bin/node"
  cp -a "$(readlink -f "$NPM_DIR")" "$EXTRA/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$EXTRA/usr/local/bin/npm"
  say "docker import cpt-local/node:bookworm (node $("$NODE_BIN" --version))"
  # One tar stream: the rootfs, then Node on top.
  python3 - "$TARBALL" "$EXTRA" <<'EOF' | docker import "${ENVS[@]}" - cpt-local/node:bookworm >/dev/null
import os, sys, tarfile
out = tarfile.open(fileobj=sys.stdout.buffer, mode="w|")
seen = set()
with tarfile.open(sys.argv[1]) as base:
    for member in base:
        seen.add(os.path.normpath(member.name))
        out.addfile(member, base.extractfile(member) if member.isfile() else None)
for dirpath, dirnames, filenames in os.walk(sys.argv[2]):
    for name in sorted(dirnames) + sorted(filenames):
        path = os.path.join(dirpath, name)
        arc = os.path.normpath("./" + os.path.relpath(path, sys.argv[2]))
        if arc in seen:
            continue  # a directory the base has already (a layer may not list a path twice)
        out.add(path, arcname=arc, recursive=False)
out.close()
EOF
  rm -rf "$EXTRA"
fi

# --- torch (CPU build) on the base: the worker's stand-in for pytorch/pytorch ---------------
if ! have cpt-local/torch:cpu; then
  TORCH=$(grep -E '^torch==' "$ROOT/requirements.lock" | cut -d= -f3)
  WHEELS=${CPT_TORCH_WHEELS:-$(pip config get global.find-links 2>/dev/null || echo /opt/wheels)}
  WHEELS=${WHEELS%% *}
  FIND=()
  if compgen -G "$WHEELS/torch-$TORCH*cpu*.whl" >/dev/null; then
    FIND=(--find-links /wheels)
  else
    WHEELS=$CACHE; FIND=(--index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple)
  fi
  say "torch $TORCH (CPU) into cpt-local/torch:cpu"
  docker rm -f cpt-local-torch >/dev/null 2>&1 || true
  # torch's own dependencies at the lock's versions.
  docker run --name cpt-local-torch --network host -v "$WHEELS:/wheels:ro" \
    -v "$ROOT/requirements.lock:/tmp/requirements.lock:ro" cpt-local/base:bookworm \
    bash -c "grep -E '^[A-Za-z0-9][A-Za-z0-9._-]*==' /tmp/requirements.lock | grep -viE '^(cpt-panel|torch|triton|nvidia-)' > /tmp/c.txt \
      && pip install -q --no-cache-dir ${FIND[*]} -c /tmp/c.txt torch==$TORCH && rm -rf /root/.cache /tmp/c.txt" >&2
  docker commit cpt-local-torch cpt-local/torch:cpu >/dev/null
  docker rm cpt-local-torch >/dev/null
fi

echo "export DOCKER_HOST=$DOCKER_HOST"
