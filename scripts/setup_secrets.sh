#!/usr/bin/env bash
# Creates every Secret Manager secret the functions read (config/functions.yaml, as Terraform does), empty, and
# says which have no value yet. Idempotent: existing secrets and their values are left alone.
#   scripts/setup_secrets.sh [--project PROJECT]
# Then set the values you use (docs/SETUP.md):  printf '%s' "$VALUE" | gcloud secrets versions add NAME --data-file=-
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
SCRIPT_NAME=setup_secrets
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"

project="${GCP_PROJECT:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --project) project="${2:-}"; shift 2 ;;
    -h|--help) sed -n '2,5p' "$here/$(basename "$0")"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

require_gcloud_project
mapfile -t SECRETS < <(deployment_config secrets)
[ ${#SECRETS[@]} -gt 0 ] || die "config/functions.yaml lists no secret"

for name in "${SECRETS[@]}"; do
  if gcloud secrets describe "$name" --project "$project" >/dev/null 2>&1; then
    echo "exists:  $name"
  else
    gcloud secrets create "$name" --project "$project" --replication-policy=automatic >/dev/null
    echo "created: $name"
  fi
  # No placeholder value: a secret with one counts as set, and a Salesforce way whose secrets all hold
  # placeholders would be chosen over the way you configured.
  if [ -z "$(gcloud secrets versions list "$name" --project "$project" --filter=state=ENABLED --limit=1 --format='value(name)')" ]; then
    echo "         $name: no value yet (docs/SETUP.md says what goes in it; leave it empty if you do not use it)"
  fi
done
