#!/usr/bin/env bash
# Shared by the deploy scripts (sourced): the gcloud prerequisites, each failing with what is missing.
# Callers set SCRIPT_NAME and may set project before calling require_gcloud_project.

die() { echo "${SCRIPT_NAME:-script}: $*" >&2; exit 1; }

# Checks gcloud, resolves $project (argument, GCP_PROJECT or gcloud config) and an active account.
require_gcloud_project() {
  command -v gcloud >/dev/null 2>&1 || die "gcloud is not installed: https://cloud.google.com/sdk/docs/install"
  [ -n "${project:-}" ] || project="$(gcloud config get-value project 2>/dev/null || true)"
  [ -n "${project:-}" ] || die "no project: pass --project, set GCP_PROJECT, or run 'gcloud config set project ID'"
  gcloud auth list --filter=status:ACTIVE --format='value(account)' 2>/dev/null | grep -q . \
    || die "no active gcloud account: run 'gcloud auth login'"
}

# Prints `python -m config.functions WHAT` (config/functions.yaml, which Terraform reads too) with $PYTHON,
# else the checkout's .venv, else python3; run from the repository root.
deployment_config() {
  local python="${PYTHON:-python3}"
  [ -n "${PYTHON:-}" ] || [ ! -x .venv/bin/python ] || python=.venv/bin/python
  "$python" -m config.functions "$@" \
    || die "cannot read config/functions.yaml with $python (needs PyYAML: make run installs it in .venv)"
}
