# Run errors: every failed run publishes a JSON message to this topic. Undeliverable messages end in
# the dead-letter topic instead of being retried for ever.
resource "google_pubsub_topic" "errors" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption at rest; customer keys (CMEK/CSEK) would add a KMS key ring this deployment does not manage
  name       = var.error_topic
  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "errors_dead_letter" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption at rest; customer keys (CMEK/CSEK) would add a KMS key ring this deployment does not manage
  name = "${var.error_topic}-dead-letter"
}

resource "google_pubsub_subscription" "errors" {
  name                       = "${var.error_topic}-sub"
  topic                      = google_pubsub_topic.errors.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.errors_dead_letter.id
    max_delivery_attempts = 10
  }
}

resource "google_pubsub_subscription" "errors_dead_letter" {
  name                       = "${var.error_topic}-dead-letter-sub"
  topic                      = google_pubsub_topic.errors_dead_letter.id
  message_retention_duration = "604800s"
}

# Pub/Sub's own service agent moves messages to the dead-letter topic (its publisher role: iam.tf).
resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  subscription = google_pubsub_subscription.errors.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent_member
}

# Queue mode (var.dispatch = "queue"; pipeline/work_queue.py, scripts/fan_out.py's ensure_topology makes the same
# locally). Each source has its work topic, pushed to its own <source>_worker function one stream at a time (the
# stream is the ordering key); what keeps failing ends in work-dead-letter. Workers land their rows on
# landed-rows, which only the merger pulls. They exist whatever var.dispatch says (idle and free in inline mode),
# so switching is one variable; none of the subscriptions expires while idle.
locals {
  # The sources with a worker (gmail_worker => gmail; its declaration, or config/functions.yaml): each has its work topic.
  queue_sources = [for name in keys(local.all_functions) : trimsuffix(name, "_worker") if endswith(name, "_worker")]
  # Pushed only to the workers deployed (var.deployed_functions).
  pushed_sources = [for source in local.queue_sources : source if contains(keys(local.functions), "${source}_worker")]
  # The settings' defaults (config/settings.py); a test compares them.
  work_topic_prefix = "work-"
  seven_days        = "604800s"
}

resource "google_pubsub_topic" "work" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption at rest; customer keys (CMEK/CSEK) would add a KMS key ring this deployment does not manage
  for_each   = toset(local.queue_sources)
  name       = "${local.work_topic_prefix}${each.key}"
  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "work_dead_letter" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption at rest; customer keys (CMEK/CSEK) would add a KMS key ring this deployment does not manage
  name       = "work-dead-letter"
  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "landed_rows" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption at rest; customer keys (CMEK/CSEK) would add a KMS key ring this deployment does not manage
  name       = "landed-rows"
  depends_on = [google_project_service.apis]
}

# One push subscription per deployed worker: Pub/Sub POSTs each message (the JSON envelope) to the worker's URL
# with an OIDC token of that source's push account, which may invoke that worker and nothing else. A delivery
# may take the function's whole timeout (540 s) before its answer; 600 s is Pub/Sub's longest ack deadline.
# The worker itself dead-letters on attempt WORK_MAX_ATTEMPTS (http_entry/work_entry.py); the same count here
# catches a worker killed on every attempt.
resource "google_pubsub_subscription" "work" {
  for_each                   = toset(local.pushed_sources)
  name                       = "${google_pubsub_topic.work[each.key].name}-workers"
  topic                      = google_pubsub_topic.work[each.key].id
  enable_message_ordering    = true
  ack_deadline_seconds       = 600
  message_retention_duration = local.seven_days

  push_config {
    push_endpoint = google_cloudfunctions2_function.functions["${each.key}_worker"].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.pusher[each.key].email
      audience              = google_cloudfunctions2_function.functions["${each.key}_worker"].service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.work_dead_letter.id
    max_delivery_attempts = var.work_max_attempts
  }

  expiration_policy {
    ttl = ""
  }
}

# The merger's: every landed batch (pulled, merged, then acknowledged: an unmerged batch is delivered again).
resource "google_pubsub_subscription" "landed_rows_merger" {
  name                       = "${google_pubsub_topic.landed_rows.name}-merger"
  topic                      = google_pubsub_topic.landed_rows.id
  ack_deadline_seconds       = 600
  message_retention_duration = local.seven_days

  expiration_policy {
    ttl = ""
  }
}

# The merger records each dead-lettered work message in work_dead_letters (the report shows them).
resource "google_pubsub_subscription" "work_dead_letter_merger" {
  name                       = "${google_pubsub_topic.work_dead_letter.name}-merger"
  topic                      = google_pubsub_topic.work_dead_letter.id
  ack_deadline_seconds       = 600
  message_retention_duration = local.seven_days

  expiration_policy {
    ttl = ""
  }
}
