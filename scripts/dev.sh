#!/usr/bin/env bash
# make dev: PostgreSQL, the Temporal dev server with its Web UI, migrations, the API and
# the worker, all on loopback. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-postgres.sh

mkdir -p .dev
if [ ! -f .dev/env ]; then
  # Development keys only: generated once per checkout, kept in the ignored .dev/.
  umask 077
  cat > .dev/env <<KEYS
JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=' | head -c 48)
WEBHOOK_SECRET_KEY=$(head -c 32 /dev/urandom | base64)
# Local receivers (127.0.0.1) are allowed in development only.
WEBHOOK_ALLOW_PRIVATE_TARGETS=true
KEYS
  echo "generated development keys in .dev/env"
fi
set -a
# shellcheck disable=SC1091
source .dev/env
set +a
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

bin/temporal server start-dev --ip 127.0.0.1 --port 7233 --ui-ip 127.0.0.1 --ui-port 8233 \
  --db-filename .dev/temporal.db --log-level warn \
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

cat <<INFO

AssetsUp Webhooks is running:
  API          http://${HTTP_ADDR:-127.0.0.1:8080}
  Temporal UI  http://127.0.0.1:8233
  Temporal     ${TEMPORAL_ADDRESS}
Get a token:   set -a; source .dev/env; set +a; bin/webhooks token --user user-1
Ctrl-C stops everything.

INFO
wait -n "${pids[@]}"
