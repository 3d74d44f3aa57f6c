# The pipeline on Google Cloud: dataset and tables, views, functions. Pub/Sub (and queue mode's topics) in pubsub.tf, service
# accounts and grants in iam.tf, Cloud Scheduler in scheduler.tf. Every table comes from
# bigquery/schemas (<table>.json + tables.yaml) and every job from config/schedules.yaml: the code's
# own files, so Terraform and the pipeline cannot disagree.
terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.4"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

locals {
  repo_root     = abspath("${path.module}/..")
  tables_layout = yamldecode(file("${local.repo_root}/bigquery/schemas/tables.yaml"))
  # Functions, secrets and settings: the list scripts/deploy_functions.sh and setup_secrets.sh read too.
  deployment = yamldecode(file("${local.repo_root}/config/functions.yaml"))
  # Every registered source (config/sources.py): its declaration names its function's size and its secrets.
  sources = { for path in fileset("${local.repo_root}/cloud_functions", "*/source.yaml") :
  dirname(path) => yamldecode(file("${local.repo_root}/cloud_functions/${path}")) }
  # A source's worker (queue mode) has its sync function's size and one instance, unless config/functions.yaml
  # gives it config/quotas.py's count (the same rule as config/functions.py).
  source_workers = { for entry_point, source in local.sources : split(".", source.worker)[1] =>
  merge(source.function, { max_instances = 1 }) if try(source.worker, null) != null }
  all_functions = merge({ for entry_point, source in local.sources : entry_point => source.function },
  local.source_workers, local.deployment.functions)
  secrets = distinct(concat(flatten([for source in values(local.sources) : source.secrets]), local.deployment.secrets))
  functions = { for name, size in local.all_functions : name => size
  if length(var.deployed_functions) == 0 || contains(var.deployed_functions, name) }
  view_files = fileset("${local.repo_root}/bigquery/views", "*.sql")
  # Views that read other views: created once those exist.
  derived_view_files = fileset("${local.repo_root}/bigquery/views/derived", "*.sql")
  # The value of each setting config/functions.yaml lists under `settings`: one listed there and missing
  # here fails the plan; one here and not listed there is never passed (a test compares the two).
  setting_values = {
    GCP_PROJECT              = var.project_id
    REGION                   = var.region
    DATASET                  = var.dataset
    BIGQUERY_LOCATION        = var.bigquery_location
    BIGQUERY_SCRATCH_DATASET = google_bigquery_dataset.scratch.dataset_id
    STAGING_EXPIRATION_HOURS = tostring(var.staging_expiration_hours)
    PUBSUB_TOPIC             = google_pubsub_topic.errors.name
    MAILBOXES                = join(",", var.mailboxes)
    DEFAULT_PHONE_REGION     = var.default_phone_region
    # Salesforce's login host (login, test or a My Domain), the instance of session-id authentication, and
    # the org's custom and formula fields the sync reads (JSON per object) with the formula refresh.
    SALESFORCE_DOMAIN                = var.salesforce_domain
    SALESFORCE_INSTANCE_URL          = var.salesforce_instance_url
    SALESFORCE_CUSTOM_FIELDS         = jsonencode(var.salesforce_custom_fields)
    SALESFORCE_FORMULA_FIELDS        = jsonencode(var.salesforce_formula_fields)
    SALESFORCE_FORMULA_REFRESH_HOURS = tostring(var.salesforce_formula_refresh_hours)
    # Queue mode: the mode, and the topics of pubsub.tf (their names from the resources themselves).
    DISPATCH               = var.dispatch
    WORK_TOPIC_PREFIX      = local.work_topic_prefix
    WORK_DEAD_LETTER_TOPIC = google_pubsub_topic.work_dead_letter.name
    WORK_MAX_ATTEMPTS      = tostring(var.work_max_attempts)
    WORK_MAX_CHAIN         = tostring(var.work_max_chain)
    LANDING_TOPIC          = google_pubsub_topic.landed_rows.name
    MERGE_INTERVAL_SECONDS = tostring(var.merge_interval_seconds)
    FILE_DROP_MAPPINGS     = jsonencode(var.file_drop_mappings)
    HUBSPOT_WEBHOOK_URL    = var.hubspot_webhook_url
  }
  environment = merge(local.deployment.environment,
  { for name in local.deployment.settings : name => local.setting_values[name] })
}

resource "google_project_service" "apis" {
  # Every API a resource here or the functions' code calls (a test maps each resource type to its API).
  for_each = toset([
    "bigquery.googleapis.com", "bigquerydatatransfer.googleapis.com", "cloudfunctions.googleapis.com",
    "run.googleapis.com", "cloudbuild.googleapis.com", "artifactregistry.googleapis.com", "storage.googleapis.com",
    "cloudscheduler.googleapis.com", "pubsub.googleapis.com", "secretmanager.googleapis.com", "gmail.googleapis.com",
    "logging.googleapis.com", "monitoring.googleapis.com", "iam.googleapis.com", "iamcredentials.googleapis.com",
    "cloudresourcemanager.googleapis.com", "eventarc.googleapis.com",
  ])
  service            = each.value
  disable_on_destroy = false
}

resource "google_bigquery_dataset" "main" {
  # checkov:skip=CKV_GCP_81: Google-managed encryption at rest; customer keys (CMEK/CSEK) would add a KMS key ring this deployment does not manage
  dataset_id  = var.dataset
  location    = var.bigquery_location
  description = "Sales intelligence: Gmail, Salesforce, Dialpad and HubSpot, matched to Salesforce records."
  depends_on  = [google_project_service.apis]
}

# Staging tables of every MERGE and entity resolution's work tables: named per run, dropped by the run,
# and expired by this default when a run dies before it drops them.
resource "google_bigquery_dataset" "scratch" {
  # checkov:skip=CKV_GCP_81: Google-managed encryption at rest; customer keys (CMEK/CSEK) would add a KMS key ring this deployment does not manage
  dataset_id                  = "${var.dataset}_scratch"
  location                    = var.bigquery_location
  description                 = "Scratch space of the sales-intelligence pipeline: staging and work tables that expire."
  default_table_expiration_ms = var.staging_expiration_hours * 3600 * 1000
  depends_on                  = [google_project_service.apis]
}

# rejected_records keeps raw records (names, addresses, message text): its partitions expire, as do etl_runs'
# (error texts, mailbox names); tables.yaml says how long, var.partition_expiration_days overrides it.
locals {
  partition_expiration_days = { for name, table in local.tables_layout :
  name => lookup(var.partition_expiration_days, name, try(table.partition.expiration_days, 0)) }
}

resource "google_bigquery_table" "tables" {
  # checkov:skip=CKV_GCP_80: Google-managed encryption at rest; customer keys (CMEK/CSEK) would add a KMS key ring this deployment does not manage
  for_each            = local.tables_layout
  dataset_id          = google_bigquery_dataset.main.dataset_id
  table_id            = each.key
  description         = each.value.description
  schema              = file("${local.repo_root}/bigquery/schemas/${each.key}.json")
  clustering          = try(each.value.cluster, null)
  deletion_protection = var.deletion_protection

  dynamic "time_partitioning" {
    for_each = try(each.value.partition, null) == null ? [] : [each.value.partition]
    content {
      type  = time_partitioning.value.type
      field = time_partitioning.value.field
      # Days a partition is kept (tables.yaml's expiration_days, or var.partition_expiration_days); none: for ever.
      expiration_ms = local.partition_expiration_days[each.key] > 0 ? local.partition_expiration_days[each.key] * 86400000 : null
    }
  }
}

# The views are DDL files (CREATE OR REPLACE VIEW), run as query jobs; a changed file is a new job.
# Each view file as its job: an id that changes with the text, and the text with the dataset filled in.
locals {
  view_jobs = { for path in concat(tolist(local.view_files), [for f in local.derived_view_files : "derived/${f}"]) :
    path => {
      job_id = "view_${trimsuffix(basename(path), ".sql")}_${substr(sha256(file("${local.repo_root}/bigquery/views/${path}")), 0, 12)}"
      query  = replace(file("${local.repo_root}/bigquery/views/${path}"), "$${dataset}", var.dataset)
    }
  }
}

resource "google_bigquery_job" "views" {
  # The analyst views, and the fresh tier's <table>_live views (below).
  for_each = merge({ for path in local.view_files : path => local.view_jobs[path] }, local.live_views)
  job_id   = each.value.job_id
  location = var.bigquery_location
  query {
    query              = each.value.query
    use_legacy_sql     = false
    create_disposition = ""
    write_disposition  = ""
  }
  depends_on = [google_bigquery_table.tables, google_bigquery_table.fresh]
}

# Views over views: created once those exist.
resource "google_bigquery_job" "derived_views" {
  for_each = { for f in local.derived_view_files : f => local.view_jobs["derived/${f}"] }
  job_id   = each.value.job_id
  location = var.bigquery_location
  query {
    query              = each.value.query
    use_legacy_sql     = false
    create_disposition = ""
    write_disposition  = ""
  }
  depends_on = [google_bigquery_job.views]
}

# The fresh tier (warehouse/fresh.py): per table a push run writes, <table>_fresh (pushed rows the merger appends
# by free load jobs and folds every FRESH_FOLD_SECONDS) and the view <table>_live (the table with them over it).
# bigquery/fresh/ is written by `make schemas`; ensure_schema makes the same on a laptop.
locals {
  fresh_tables = { for f in fileset("${local.repo_root}/bigquery/fresh", "*_fresh.json") : trimsuffix(f, ".json") => f }
  live_views = { for f in fileset("${local.repo_root}/bigquery/fresh", "*_live.sql") : trimsuffix(f, ".sql") => {
    job_id = "view_${trimsuffix(f, ".sql")}_${substr(sha256(file("${local.repo_root}/bigquery/fresh/${f}")), 0, 12)}"
    query  = replace(file("${local.repo_root}/bigquery/fresh/${f}"), "$${dataset}", var.dataset)
  } }
}

resource "google_bigquery_table" "fresh" {
  # checkov:skip=CKV_GCP_80: Google-managed encryption at rest, as the tables they fold into
  for_each            = local.fresh_tables
  dataset_id          = google_bigquery_dataset.main.dataset_id
  table_id            = each.key
  description         = "Pushed rows not folded yet (warehouse/fresh.py)"
  schema              = file("${local.repo_root}/bigquery/fresh/${each.value}")
  deletion_protection = var.deletion_protection # rows pushed and not folded yet live only here
  lifecycle {
    # The merger adds the columns a Salesforce sync learns at run time (custom fields), as to the tables: a plan
    # must not replace a fresh table (and the rows waiting in it) to take them away.
    ignore_changes = [schema]
  }
}

resource "google_secret_manager_secret" "secrets" {
  for_each  = toset(local.secrets)
  secret_id = each.value
  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]
}

# The function source: the repository root (its main.py re-exports every entry point), minus exactly
# what .gcloudignore keeps out of an upload (local secrets and .env included; a test compares the two
# lists), plus the same patterns at any depth for caches.
data "archive_file" "source" {
  type        = "zip"
  source_dir  = local.repo_root
  output_path = "${path.module}/.build/source.zip"
  excludes = [
    ".gcloudignore", ".git", ".gitignore", ".ci", ".venv", ".venv-bqemulator", ".venv-checkov", ".local", ".env",
    ".env.example",
    "secrets.local.json", "__pycache__", "**/__pycache__", "*.pyc", "**/*.pyc", ".pytest_cache", "tests", "sandbox",
    "bench", "infrastructure", "docs", "*.md", "**/*.md", "requirements-dev.txt", "requirements-bqemulator.txt",
    "requirements-checkov.txt", "pytest.ini", "Makefile",
  ]
}

resource "google_storage_bucket" "source" {
  # checkov:skip=CKV_GCP_62: the bucket holds only build archives named by their content hash; access logs would need a second bucket and tell nothing the deploy log does not
  # checkov:skip=CKV_GCP_78: objects are never overwritten (each archive is named by its md5), so versioning would keep nothing more
  name                        = "${var.project_id}-sales-intel-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
}

resource "google_storage_bucket_object" "source" {
  name   = "source-${data.archive_file.source.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}

resource "google_cloudfunctions2_function" "functions" {
  # checkov:skip=CKV_GCP_124: Cloud Scheduler and Pub/Sub push call the function URLs from outside any VPC; every call needs an OIDC token of an account allowed to invoke (no unauthenticated access)
  for_each    = local.functions
  name        = replace(each.key, "_", "-")
  location    = var.region
  description = "Entry point ${each.key} of main.py"

  build_config {
    runtime     = "python311"
    entry_point = each.key
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory   = each.value.memory
    timeout_seconds    = each.value.timeout_seconds
    max_instance_count = each.value.max_instances
    # One request at a time per instance: max_instances counts the streams running at once (config/quotas.py)
    # and keeps the merger alone.
    max_instance_request_concurrency = 1
    service_account_email            = google_service_account.runtime.email
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    environment_variables            = merge(local.environment, { FUNCTION_TIMEOUT_SECONDS = tostring(each.value.timeout_seconds) })
  }

  # trigger: storage (config/functions.yaml): called by Eventarc on each object finalized in the drop bucket
  # (file_drops.tf), with retries, instead of over HTTP by Cloud Scheduler.
  dynamic "event_trigger" {
    for_each = try(each.value.trigger, "http") == "storage" ? [each.key] : []
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.storage.object.v1.finalized"
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = google_service_account.drops.email
      event_filters {
        attribute = "bucket"
        value     = google_storage_bucket.drops.name
      }
    }
  }

  # trigger: topic:<name> (gmail_push): called by Eventarc with each message of that topic (push.tf), as the
  # scheduler account (its run.invoker: iam.tf); retried while it fails, as Gmail's notifications should be.
  dynamic "event_trigger" {
    for_each = startswith(try(each.value.trigger, "http"), "topic:") ? [trimprefix(each.value.trigger, "topic:")] : []
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
      pubsub_topic          = google_pubsub_topic.push[event_trigger.value].id
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = google_service_account.scheduler.email
    }
  }

  depends_on = [google_project_service.apis]
}
