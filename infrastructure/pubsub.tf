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
