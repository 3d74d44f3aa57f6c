#!/usr/bin/env bash
# Deploys the Cloud Functions (gen2) from the repository root, whose main.py re-exports every entry
# point. No function allows unauthenticated calls; all run as the runtime service account.
#   scripts/deploy_functions.sh [--project P] [--region R] [FUNCTION ...]   (default: all)
# MAILBOXES, SALESFORCE_CUSTOM_FIELDS, SALESFORCE_FORMULA_FIELDS and SALESFORCE_FORMULA_REFRESH_HOURS in the
# environment are passed on to the functions.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."


SCRIPT_NAME=deploy_functions
# shellcheck source=scripts/lib.sh
source "$here/lib.sh"

project="${GCP_PROJECT:-}"
region="${REGION:-us-central1}"
dataset="${DATASET:-sales_intelligence}"
selected=()
while [ $# -gt 0 ]; do
  case "$1" in
    --project) project="${2:-}"; shift 2 ;;
    --region) region="${2:-}"; shift 2 ;;
    -h|--help) sed -n '2,5p' "$here/$(basename "$0")"; exit 0 ;;
    -*) die "unknown option: $1 (see --help)" ;;
    *) selected+=("$1"); shift ;;
  esac
done

require_gcloud_project
[ -f main.py ] && [ -f requirements.txt ] || die "run from a checkout: main.py and requirements.txt are missing"

# entry point, memory, timeout (s), max instances: config/functions.yaml (Terraform reads it too)
python="${PYTHON:-python3}"
[ ! -x .venv/bin/python ] || python="${PYTHON:-.venv/bin/python}"
mapfile -t FUNCTIONS < <("$python" -m config.functions) || die "cannot read config/functions.yaml with $python (needs PyYAML: make run installs it in .venv)"
[ ${#FUNCTIONS[@]} -gt 0 ] || die "config/functions.yaml lists no function"

service_account="sales-intel-runtime@${project}.iam.gserviceaccount.com"
# '^|^' makes '|' the separator, so MAILBOXES and the JSON of the Salesforce field settings may hold commas.
env_vars="^|^GCP_PROJECT=${project}|REGION=${region}|DATASET=${dataset}|WAREHOUSE=bigquery"
env_vars+="|SECRETS_BACKEND=secret_manager|ERROR_SINK=pubsub|PUBSUB_TOPIC=ingestion-errors"
for name in MAILBOXES SALESFORCE_CUSTOM_FIELDS SALESFORCE_FORMULA_FIELDS SALESFORCE_FORMULA_REFRESH_HOURS; do
  [ -z "${!name:-}" ] || env_vars+="|${name}=${!name}"
done

known=" "
for spec in "${FUNCTIONS[@]}"; do known+="${spec%% *} "; done
for name in "${selected[@]}"; do
  case "$known" in *" $name "*) ;; *) die "unknown function '$name'; known:${known}" ;; esac
done

for spec in "${FUNCTIONS[@]}"; do
  read -r entry_point memory timeout max_instances <<<"$spec"
  if [ ${#selected[@]} -gt 0 ] && [[ ! " ${selected[*]} " == *" ${entry_point} "* ]]; then
    continue
  fi
  echo "deploying ${entry_point} to ${project}/${region}"
  gcloud functions deploy "${entry_point//_/-}" \
    --gen2 \
    --project="$project" \
    --region="$region" \
    --runtime=python311 \
    --source=. \
    --entry-point="$entry_point" \
    --trigger-http \
    --no-allow-unauthenticated \
    --service-account="$service_account" \
    --memory="$memory" \
    --timeout="${timeout}s" \
    --max-instances="$max_instances" \
    --set-env-vars="$env_vars"
done
