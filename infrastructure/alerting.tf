# Failed runs alert: every failed run logs one ERROR line "run failed" (or "invocation failed before its run
# started") with its source (pipeline/etl_runs.py); a log-based metric counts them per source and an alert policy
# notifies the channels of var.notification_channels as soon as one is counted.

resource "google_logging_metric" "failed_runs" {
  name        = "sales_intelligence_failed_runs"
  description = "Failed pipeline runs, by source (ERROR log line of pipeline/etl_runs.py)."
  filter      = <<-EOT
    resource.type="cloud_run_revision"
    severity>=ERROR
    (jsonPayload.message="run failed" OR jsonPayload.message="invocation failed before its run started")
  EOT
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
    labels {
      key         = "source"
      value_type  = "STRING"
      description = "gmail, salesforce, dialpad, hubspot, entity_resolution or account_recommendations."
    }
  }
  label_extractors = {
    "source" = "EXTRACT(jsonPayload.source)"
  }
  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "failed_runs" {
  display_name          = "Sales-intelligence pipeline: a run failed"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "Failed runs per source > 0 in 5 minutes"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.failed_runs.name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.source"]
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A pipeline run failed. Its row in `${var.dataset}.etl_runs` (status failed) holds the error and run id; the same JSON is in the `${var.error_topic}` Pub/Sub topic. `run_local check` (or the README's troubleshooting) says which sources are stale."
  }
}
