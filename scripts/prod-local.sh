#!/usr/bin/env bash
# make prod-local: the production topology of docker-compose.yml as processes on
# loopback (cmd/prodlocal, internal/cluster): the real Temporal server on PostgreSQL
# persistence and advanced visibility with deploy/temporal/dynamicconfig.yaml, its Web
# UI with a codec server, migrations, 2 API replicas behind a balancer on :8080 and 3
# worker replicas. Same ports and development keys as `make dev` (stop one before
# starting the other), its own databases, and, as in compose, encrypted Temporal
# payloads. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-postgres.sh
# shellcheck source=scripts/dev-env.sh
source scripts/dev-env.sh
if [ ! -f .dev/prod-local.env ]; then
  (
    umask 077
    cat > .dev/prod-local.env <<KEYS
# Payload encryption (README "Private histories"), on in prod-local as in compose.
TEMPORAL_PAYLOAD_KEY=$(head -c 32 /dev/urandom | base64)
# The codec server's sign-in token, for reading encrypted payloads in the Web UI.
CODEC_SERVER_TOKEN=$(head -c 32 /dev/urandom | base64 | tr -d '\n')
KEYS
  )
  echo "generated prod-local payload keys in .dev/prod-local.env"
fi
set -a
# shellcheck disable=SC1091
source .dev/prod-local.env
set +a
exec bin/prodlocal "$@"
