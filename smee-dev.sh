#!/usr/bin/env bash
# Forward a smee.io channel (WEBHOOK_PROXY_URL) to the local webhook route, so a real
# GitHub App can deliver to a reactor running on this machine (`reactor serve` or `reactor dev`).
set -euo pipefail

if [ -z "${WEBHOOK_PROXY_URL:-}" ] && [ -f .env ]; then
  WEBHOOK_PROXY_URL=$(sed -n 's/^WEBHOOK_PROXY_URL=//p' .env | tail -n 1 | tr -d '"'"'")
fi
if [ -z "${WEBHOOK_PROXY_URL:-}" ]; then
  echo "smee-dev.sh: WEBHOOK_PROXY_URL is not set: create a channel at https://smee.io/new and put its URL in .env" >&2
  exit 2
fi
if ! command -v npx >/dev/null 2>&1; then
  echo "smee-dev.sh: npx is not installed: install Node.js 18 or newer (it ships npx)" >&2
  exit 2
fi

target="http://127.0.0.1:${PORT:-3000}/api/github/webhooks"
echo "smee-dev.sh: forwarding ${WEBHOOK_PROXY_URL} -> ${target}"
exec npx --yes smee-client --url "${WEBHOOK_PROXY_URL}" --target "${target}"
