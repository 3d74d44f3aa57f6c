# Push freshness (README "Push freshness"): the topic Gmail publishes mailbox changes to, and who may call what.
# - Gmail publishes as gmail-api-push@system.gserviceaccount.com: publisher on the push topic, nothing else.
# - hubspot_webhook and dialpad_webhook (public: true in config/functions.yaml) are the only functions anyone may
#   invoke without a Google identity: HubSpot and Dialpad cannot sign in; each request's signature is verified
#   before anything of it is read (push/signatures.py), and those functions open no warehouse.
locals {
  push_topics = toset([for name, spec in local.all_functions : trimprefix(spec.trigger, "topic:")
  if startswith(try(spec.trigger, "http"), "topic:")])
  public_functions = { for name, function in google_cloudfunctions2_function.functions : name => function
  if try(local.all_functions[name].public, false) }
}

resource "google_pubsub_topic" "push" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption at rest; customer keys (CMEK/CSEK) would add a KMS key ring this deployment does not manage
  for_each                   = local.push_topics
  name                       = each.value
  message_retention_duration = "86400s"
  depends_on                 = [google_project_service.apis]
}

resource "google_pubsub_topic_iam_member" "gmail_publishes_push" {
  for_each = local.push_topics
  topic    = google_pubsub_topic.push[each.value].name
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:gmail-api-push@system.gserviceaccount.com"
}

resource "google_cloud_run_service_iam_member" "webhook_public_invoker" {
  # checkov:skip=CKV_GCP_102: the webhook receivers must be reachable by HubSpot and Dialpad, which hold no Google identity; they refuse (401) every request whose signature does not verify
  for_each = local.public_functions
  location = var.region
  service  = each.value.service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}
