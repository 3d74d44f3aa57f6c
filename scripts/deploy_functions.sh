#!/usr/bin/env bash
# Deploys the Cloud Functions (gen2) from the repository root, whose main.py re-exports every entry
# point. Only the webhooks (public in config/functions.yaml) allow unauthenticated calls; gmail_push is triggered
# by its Pub/Sub topic; all run as the runtime service account.
#   scripts/deploy_functions.sh [--project P] [--region R] [FUNCTION ...]   (default: all)
# The settings of config/functions.yaml (MAILBOXES, SALESFORCE_DOMAIN, ...) set in the environment are passed
# on to the functions, beside its fixed ones and each function's FUNCTION_TIMEOUT_SECONDS (its timeout).
# One request per instance: max instances is how many streams run at once (config/quotas.py). Queue mode's
# topics, push subscriptions and grants come from Terraform (infrastructure/); this script deploys the functions.
# A function whose trigger is storage (file_drop) is triggered by Eventarc on the drop bucket (DROP_BUCKET,
# default <project>-sales-intel-drops, which Terraform creates with its IAM) instead of over HTTP.
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
    -h|--help) sed -n '2,6p' "$here/$(basename "$0")"; exit 0 ;;
    -*) die "unknown option: $1 (see --help)" ;;
    *) selected+=("$1"); shift ;;
  esac
done

require_gcloud_project
[ -f main.py ] && [ -f requirements.txt ] || die "run from a checkout: main.py and requirements.txt are missing"

# entry point, memory, timeout (s), max instances, trigger, access; fixed settings; settings to pass: config/functions.yaml,
# which Terraform reads too.
mapfile -t FUNCTIONS < <(deployment_config sizes)
mapfile -t FIXED < <(deployment_config environment)
mapfile -t SETTINGS < <(deployment_config settings)
[ ${#FUNCTIONS[@]} -gt 0 ] || die "config/functions.yaml lists no function"

service_account="sales-intel-runtime@${project}.iam.gserviceaccount.com"
drops_account="sales-intel-drops@${project}.iam.gserviceaccount.com"
drop_bucket="${DROP_BUCKET:-${project}-sales-intel-drops}"
GCP_PROJECT="$project" REGION="$region" DATASET="$dataset" PUBSUB_TOPIC="${PUBSUB_TOPIC:-ingestion-errors}"
# '^|^' makes '|' the separator, so MAILBOXES and the JSON of the Salesforce field settings may hold commas.
env_vars="^|^$(IFS='|'; echo "${FIXED[*]}")"
for name in "${SETTINGS[@]}"; do
  [ -z "${!name:-}" ] || env_vars+="|${name}=${!name}"
done

known=" "
for spec in "${FUNCTIONS[@]}"; do known+="${spec%% *} "; done
for name in "${selected[@]}"; do
  case "$known" in *" $name "*) ;; *) die "unknown function '$name'; known:${known}" ;; esac
done

for spec in "${FUNCTIONS[@]}"; do
  read -r entry_point memory timeout max_instances trigger access <<<"$spec"
  if [ ${#selected[@]} -gt 0 ] && [[ ! " ${selected[*]} " == *" ${entry_point} "* ]]; then
    continue
  fi
  if [ "$trigger" = storage ]; then  # Eventarc on each object finalized in the drop bucket, retried until done
    trigger_flags=(--trigger-bucket="$drop_bucket" --retry --trigger-service-account="$drops_account")
  elif [[ "$trigger" == topic:* ]]; then  # Eventarc with each message of the topic (gmail_push), retried until done
    trigger_flags=(--trigger-topic="${trigger#topic:}" --retry)
  elif [ "$access" = public ]; then  # the webhooks only: they verify each request's signature themselves
    trigger_flags=(--trigger-http --allow-unauthenticated)
  else
    trigger_flags=(--trigger-http --no-allow-unauthenticated)
  fi
  echo "deploying ${entry_point} to ${project}/${region}"
  gcloud functions deploy "${entry_point//_/-}" \
    --gen2 \
    --project="$project" \
    --region="$region" \
    --runtime=python311 \
    --source=. \
    --entry-point="$entry_point" \
    "${trigger_flags[@]}" \
    --service-account="$service_account" \
    --memory="$memory" \
    --timeout="${timeout}s" \
    --max-instances="$max_instances" \
    --concurrency=1 \
    --set-env-vars="${env_vars}|FUNCTION_TIMEOUT_SECONDS=${timeout}"
done
