#!/usr/bin/env bash
# make dev: PostgreSQL, the Temporal dev server with its Web UI, migrations, the API and
# the worker, all on loopback. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-postgres.sh

# shellcheck source=scripts/dev-env.sh
source scripts/dev-env.sh
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/webhooks?sslmode=disable}
export TEMPORAL_ADDRESS=${TEMPORAL_ADDRESS:-127.0.0.1:7233}

if ! psql -h 127.0.0.1 -U postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'webhooks'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE webhooks"
  echo "created database webhooks"
fi

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

# Payload encryption is off in development unless TEMPORAL_PAYLOAD_KEY is set (in .dev/env or
# the environment); then a codec server lets the Web UI show the payloads (README "Private
# histories"), signed in with CODEC_SERVER_TOKEN, generated here once.
ui_codec=()
if [ -n "${TEMPORAL_PAYLOAD_KEY:-}" ]; then
  if [ -z "${CODEC_SERVER_TOKEN:-}" ]; then
    (umask 077; echo "CODEC_SERVER_TOKEN=$(head -c 32 /dev/urandom | base64 | tr -d '\n')" >> .dev/env)
    set -a; source .dev/env; set +a
  fi
  ui_codec=(--ui-codec-endpoint "http://${CODEC_SERVER_ADDR:-127.0.0.1:8234}")
fi

bin/temporal server start-dev --ip 127.0.0.1 --port 7233 --ui-ip 127.0.0.1 --ui-port 8233 \
  --db-filename .dev/temporal.db --log-level warn "${ui_codec[@]}" \
  --dynamic-config-value system.enableActivityEagerExecution=true \
  --dynamic-config-value matching.numTaskqueueReadPartitions=1 \
  --dynamic-config-value matching.numTaskqueueWritePartitions=1 &
pids+=($!)
for _ in $(seq 1 60); do
  bin/temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 && break
  sleep 1
done
bin/temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null

bin/webhooks migrate
bin/webhooks worker &
pids+=($!)
bin/webhooks api &
pids+=($!)
if [ ${#ui_codec[@]} -gt 0 ]; then
  bin/webhooks codec-server &
  pids+=($!)
  echo "payloads are encrypted: sign in to the codec server at http://${CODEC_SERVER_ADDR:-127.0.0.1:8234}/login with CODEC_SERVER_TOKEN from .dev/env"
fi

cat <<INFO

AssetsUp Webhooks is running:
  API          http://${HTTP_ADDR:-127.0.0.1:8080}
  Temporal UI  http://127.0.0.1:8233
  Temporal     ${TEMPORAL_ADDRESS}
Get a token:   set -a; source .dev/env; set +a; bin/webhooks token --user user-1
Ctrl-C stops everything.

INFO
wait -n "${pids[@]}"
