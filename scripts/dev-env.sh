#!/usr/bin/env bash
# Sourced by dev.sh and prod-local.sh: the development keys, generated once per checkout
# into the ignored .dev/env, exported into the caller's environment.
mkdir -p .dev
if [ ! -f .dev/env ]; then
  # Development keys only: generated once per checkout, kept in the ignored .dev/.
  (
    umask 077
    cat > .dev/env <<KEYS
JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=' | head -c 48)
WEBHOOK_SECRET_KEY=$(head -c 32 /dev/urandom | base64)
# Local receivers (127.0.0.1) are allowed in development only.
WEBHOOK_ALLOW_PRIVATE_TARGETS=true
KEYS
  )
  echo "generated development keys in .dev/env"
fi
set -a
# shellcheck disable=SC1091
source .dev/env
set +a
