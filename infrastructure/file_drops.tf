# File drops: CRM exports and mbox archives dropped into a private bucket are imported by the file_drop
# function (config/functions.yaml, trigger: storage), which Eventarc calls on each object finalize.
# - The bucket: private (uniform access, public access prevention), versioned, so a file replaced under the
#   same name keeps the generation that was imported (file_drops records bucket, name, generation); objects
#   are deleted var.drop_retention_days after they are dropped, replaced generations after 30 days.
# - The trigger: retries on (an import past its time budget raises so the retry resumes it), run as its own
#   account that may only receive events and invoke the file_drop function.
# - The runtime account reads the bucket's objects; Cloud Storage's service agent publishes the events.
locals {
  drop_bucket          = var.drop_bucket_name != "" ? var.drop_bucket_name : "${var.project_id}-sales-intel-drops"
  storage_agent_member = "serviceAccount:service-${data.google_project.this.number}@gs-project-accounts.iam.gserviceaccount.com"
  drop_functions       = { for name, size in local.functions : name => size if try(size.trigger, "http") == "storage" }
}

resource "google_storage_bucket" "drops" {
  # checkov:skip=CKV_GCP_62: access logs would need a second bucket; every object read is an import recorded in etl_runs and file_drops
  name                        = local.drop_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = var.drop_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "drops" {
  account_id   = "sales-intel-drops"
  display_name = "Sales intelligence file drops (Eventarc trigger of file_drop)"
  depends_on   = [google_project_service.apis]
}

resource "google_storage_bucket_iam_member" "runtime_reads_drops" {
  bucket = google_storage_bucket.drops.name
  role   = "roles/storage.objectViewer"
  member = local.runtime_member
}

# Eventarc's own requirements for a Cloud Storage trigger: the trigger's account receives events, and the
# project's Cloud Storage service agent publishes them (to the Pub/Sub topic Eventarc creates).
resource "google_project_iam_member" "drops_event_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.drops.email}"
}

resource "google_project_iam_member" "storage_agent_publisher" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = local.storage_agent_member
}

resource "google_cloud_run_service_iam_member" "drops_invoker" {
  for_each = local.drop_functions
  location = var.region
  service  = google_cloudfunctions2_function.functions[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.drops.email}"
}
