#!/usr/bin/env bash
# Prepare this machine for `make test`: the system packages the tests use and the services they
# talk to. Idempotent and quiet when everything is already there; run by `make test` itself, so a
# fresh machine needs nothing else. Needs root (or passwordless sudo) only when something is missing.
#
# May install (Debian packages): chromium, fonts-noto-core, fonts-noto-cjk (browser tests, non-Latin
# glyphs), redis-server, postgresql (the database layer is also tested on PostgreSQL), fortunes-zh
# (real Chinese text for the tokenizer and data tests), fortunes-ru (real Russian text: the
# step-0 comparison of a base and an extended tokenizer).
# May start: redis-server on 127.0.0.1:6379, the local PostgreSQL cluster on 127.0.0.1:5432, and a
# one-host Slurm cluster (scripts/slurm-local.sh: slurm-wlm + munge, munged/slurmctld/two slurmd).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

say() { echo "prepare-test-machine: $*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
for pkg in fonts-noto-core fonts-noto-cjk fortunes-zh fortunes-ru; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
command -v redis-server >/dev/null || need+=(redis-server)
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  say "apt-get install ${need[*]}"
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Redis on 127.0.0.1:6379 (the tests use DB 15). Nothing kept on disk.
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  say "starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

# PostgreSQL on 127.0.0.1:5432 with a `test` database the `postgres` role reaches without a password.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1 || true)
  if [ -z "$version" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
    as_root pg_createcluster "$version" main >/dev/null
  fi
  conf=/etc/postgresql/$version/main
  # Loopback only, trusted: a throwaway test server, never reachable from outside this machine.
  if ! grep -q "cpt-panel tests" "$conf/pg_hba.conf"; then
    as_root sh -c "printf '%s\n' '# cpt-panel tests' 'host all all 127.0.0.1/32 trust' 'local all all trust' | cat - '$conf/pg_hba.conf' > '$conf/pg_hba.conf.new' && mv '$conf/pg_hba.conf.new' '$conf/pg_hba.conf'"
  fi
  say "starting PostgreSQL $version on 127.0.0.1:5432"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 100); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.1; done
fi
if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
  say "creating the PostgreSQL database 'test'"
  psql -h 127.0.0.1 -U postgres -d postgres -qc 'create database test' >/dev/null
fi

# A real Slurm on this machine for tests/slurm (installs slurm-wlm and munge when missing).
bash "$(dirname "$0")/slurm-local.sh"
