# Two service accounts, least privilege:
# - runtime: what the functions run as. Data editor on the dataset and its scratch dataset only, job user
#   on the project (to run queries and loads), secret accessor on each secret, publisher on the error
#   topic. No project-wide editor or owner.
# - scheduler: what Cloud Scheduler signs its OIDC tokens as. It may only invoke the functions it calls
#   (all but the queue workers).
# - monitor: what the scheduled checks of alerting.tf run as. It may read the dataset and run query jobs.
# - push (one per source, queue mode): what Pub/Sub signs a work delivery's OIDC token as. It may only invoke
#   its own source's worker.
data "google_project" "this" {}

locals {
  runtime_member = "serviceAccount:${google_service_account.runtime.email}"
  # Pub/Sub's own service agent (moves undeliverable messages to the dead-letter topic).
  pubsub_agent_member = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_service_account" "runtime" {
  account_id   = "sales-intel-runtime"
  display_name = "Sales intelligence functions"
  depends_on   = [google_project_service.apis]
}

resource "google_service_account" "scheduler" {
  account_id   = "sales-intel-scheduler"
  display_name = "Sales intelligence scheduler (invokes the functions)"
  depends_on   = [google_project_service.apis]
}

resource "google_service_account" "monitor" {
  account_id   = "sales-intel-monitor"
  display_name = "Sales intelligence checks (stale streams, rejected records)"
  depends_on   = [google_project_service.apis]
}

resource "google_project_iam_member" "monitor_job_user" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${google_service_account.monitor.email}"
}

resource "google_bigquery_dataset_iam_member" "monitor_viewer" {
  dataset_id = google_bigquery_dataset.main.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = "serviceAccount:${google_service_account.monitor.email}"
}

# The functions write the tables, and the staging and work tables of the scratch dataset.
resource "google_bigquery_dataset_iam_member" "runtime_editor" {
  for_each   = { data = google_bigquery_dataset.main.dataset_id, scratch = google_bigquery_dataset.scratch.dataset_id }
  dataset_id = each.value
  role       = "roles/bigquery.dataEditor"
  member     = local.runtime_member
}

moved {
  from = google_bigquery_dataset_iam_member.runtime_data_editor
  to   = google_bigquery_dataset_iam_member.runtime_editor["data"]
}

moved {
  from = google_bigquery_dataset_iam_member.runtime_scratch_editor
  to   = google_bigquery_dataset_iam_member.runtime_editor["scratch"]
}

resource "google_project_iam_member" "runtime_job_user" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = local.runtime_member
}

resource "google_secret_manager_secret_iam_member" "runtime_secret_accessor" {
  for_each  = google_secret_manager_secret.secrets
  secret_id = each.value.id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.runtime_member
}

# The functions publish their errors; Pub/Sub's own service agent moves messages to the dead-letter topic.
resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = {
    runtime     = { topic = google_pubsub_topic.errors.name, member = local.runtime_member }
    dead_letter = { topic = google_pubsub_topic.errors_dead_letter.name, member = local.pubsub_agent_member }
  }
  topic  = each.value.topic
  role   = "roles/pubsub.publisher"
  member = each.value.member
}

moved {
  from = google_pubsub_topic_iam_member.runtime_publisher
  to   = google_pubsub_topic_iam_member.publisher["runtime"]
}

moved {
  from = google_pubsub_topic_iam_member.dead_letter_publisher
  to   = google_pubsub_topic_iam_member.publisher["dead_letter"]
}

# Gen2 functions are Cloud Run services: invoking one needs run.invoker on its service. The workers are called
# by their push subscriptions only.
resource "google_cloud_run_service_iam_member" "scheduler_invoker" {
  for_each = { for name, fn in google_cloudfunctions2_function.functions : name => fn if !endswith(name, "_worker") }
  location = var.region
  service  = each.value.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

# Queue mode. Each source's push account may invoke that source's worker only; Pub/Sub's service agent mints
# its OIDC tokens (granted by default to projects created since April 2021, explicitly here for older ones).
resource "google_service_account" "pusher" {
  for_each     = toset(local.pushed_sources)
  account_id   = "sales-intel-push-${each.key}"
  display_name = "Sales intelligence ${each.key} work deliveries (invokes ${each.key}_worker)"
  depends_on   = [google_project_service.apis]
}

resource "google_cloud_run_service_iam_member" "pusher_invoker" {
  for_each = google_service_account.pusher
  location = var.region
  service  = google_cloudfunctions2_function.functions["${each.key}_worker"].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${each.value.email}"
}

resource "google_service_account_iam_member" "pusher_token_creator" {
  for_each           = google_service_account.pusher
  service_account_id = each.value.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent_member
}

# The functions publish work messages (the sync functions enqueue, the workers their continuations), landed
# rows, and the work messages they give up on; Pub/Sub's service agent dead-letters what no answer acknowledged.
resource "google_pubsub_topic_iam_member" "queue_publisher" {
  for_each = merge(
    { for source, topic in google_pubsub_topic.work : "runtime_work_${source}" => { topic = topic.name, member = local.runtime_member } },
    {
      runtime_landed_rows      = { topic = google_pubsub_topic.landed_rows.name, member = local.runtime_member }
      runtime_work_dead_letter = { topic = google_pubsub_topic.work_dead_letter.name, member = local.runtime_member }
      agent_work_dead_letter   = { topic = google_pubsub_topic.work_dead_letter.name, member = local.pubsub_agent_member }
    },
  )
  topic  = each.value.topic
  role   = "roles/pubsub.publisher"
  member = each.value.member
}

# The merger pulls the landed rows and the dead letters; Pub/Sub's service agent acknowledges, on the work
# subscriptions, what it moved to the dead-letter topic.
resource "google_pubsub_subscription_iam_member" "queue_subscriber" {
  for_each = merge(
    { for source, subscription in google_pubsub_subscription.work : "agent_work_${source}" => { subscription = subscription.name, member = local.pubsub_agent_member } },
    {
      runtime_landed_rows      = { subscription = google_pubsub_subscription.landed_rows_merger.name, member = local.runtime_member }
      runtime_work_dead_letter = { subscription = google_pubsub_subscription.work_dead_letter_merger.name, member = local.runtime_member }
    },
  )
  subscription = each.value.subscription
  role         = "roles/pubsub.subscriber"
  member       = each.value.member
}
