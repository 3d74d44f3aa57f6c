# Alerts, each to the channels of var.notification_channels:
# - a run failed or was abandoned (log-based metric on the ERROR/WARNING lines of pipeline/etl_runs.py; a run
#   cancelled by SIGINT/SIGTERM logs "run cancelled" and is not counted);
# - an invocation failed (Cloud Run's own request count: any 4xx/5xx answer, including a timeout, a crash or an
#   out-of-memory kill before anything was logged, and a scheduler call refused by IAM);
# - a source or stream went stale, or a source's rejected records rose: scheduled queries over etl_runs and
#   rejected_records (bigquery/monitoring/*.sql) that fail naming what they found; a failed check run is an
#   ERROR log entry of its transfer config, which a log-match condition turns into an alert. A stopped scheduler,
#   a function that never logs and plain silence all end in a stale source;
# - queue mode: a work message dead-lettered (by its worker, which logs "work message dead-lettered", or by
#   Pub/Sub after a worker killed on every attempt), and landed rows waiting over 15 minutes (the merger is
#   behind or down).

resource "google_logging_metric" "failed_runs" {
  name        = "sales_intelligence_failed_runs"
  description = "Failed or abandoned pipeline runs, by source (log lines of pipeline/etl_runs.py; cancelled runs are not counted)."
  filter      = <<-EOT
    resource.type="cloud_run_revision"
    ((severity>=ERROR AND (jsonPayload.message="run failed" OR jsonPayload.message="invocation failed before its run started"))
    OR (severity>=WARNING AND jsonPayload.message="runs closed as abandoned"))
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
    labels {
      key         = "outcome"
      value_type  = "STRING"
      description = "failed or abandoned."
    }
  }
  label_extractors = {
    "source"  = "EXTRACT(jsonPayload.source)"
    "outcome" = "REGEXP_EXTRACT(jsonPayload.message, \"(failed|abandoned)\")"
  }
  depends_on = [google_project_service.apis]
}

# Queue mode: the line http_entry/work_entry.py logs when a worker gives a work message up.
resource "google_logging_metric" "dead_lettered_work" {
  name        = "sales_intelligence_dead_lettered_work"
  description = "Work messages a queue-mode worker dead-lettered (a poison message, or a run failed on its last allowed attempt)."
  filter      = <<-EOT
    resource.type="cloud_run_revision"
    severity>=ERROR AND jsonPayload.message="work message dead-lettered"
  EOT
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }
  depends_on = [google_project_service.apis]
}

# Gen2 functions are Cloud Run services named like the function (gmail-sync, ...).
locals {
  function_services = [for name in keys(local.functions) : replace(name, "_", "-")]
  # The alerts on a count that must stay 0: any in 5 minutes notifies, per the series of group_by.
  count_alerts = {
    failed_runs = {
      title    = "a run failed or was abandoned"
      filter   = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.failed_runs.name}\" AND resource.type=\"cloud_run_revision\""
      group_by = ["metric.label.source", "metric.label.outcome"]
      explain  = "A pipeline run failed, or a run was found abandoned (killed, out of memory or timed out without recording its end). Its row in `${var.dataset}.etl_runs` (status failed or abandoned) holds the error and run id; a failure's JSON is in the `${var.error_topic}` Pub/Sub topic too."
    }
    invocation_errors = {
      title    = "a function invocation failed"
      filter   = "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\" AND metric.labels.response_code_class=one_of(\"4xx\", \"5xx\") AND resource.labels.service_name=one_of(${join(", ", [for s in local.function_services : "\"${s}\""])})"
      group_by = ["resource.label.service_name", "metric.label.response_code"]
      explain  = "A function answered 4xx or 5xx: a failed run (500, also alerted as a failed run), a request it refused (400), a timeout (504), a crash or out-of-memory kill before anything was logged (500/503), or a scheduler call refused by IAM (401/403: the scheduler account lost run.invoker). The function's Cloud Run request log shows the answer; `gcloud scheduler jobs describe` the job's last attempt."
    }
    dead_lettered_work = {
      title    = "a work message was dead-lettered"
      filter   = "metric.type=\"logging.googleapis.com/user/${google_logging_metric.dead_lettered_work.name}\" AND resource.type=\"cloud_run_revision\""
      group_by = ["resource.label.service_name"]
      explain  = "A queue-mode worker gave a work message up: it could never run (not a work message, another source's, an unknown stream) or its run failed on each of its ${var.work_max_attempts} deliveries. The stream waits for its next schedule. The merger records it in `${var.dataset}.work_dead_letters` (the report lists them) with the error; the worker's log line has the message id, and the run's row in `${var.dataset}.etl_runs` the error."
    }
    work_dead_lettered_by_pubsub = {
      title    = "Pub/Sub dead-lettered a work message"
      filter   = "metric.type=\"pubsub.googleapis.com/subscription/dead_letter_message_count\" AND resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=starts_with(\"${local.work_topic_prefix}\") AND resource.labels.subscription_id=ends_with(\"-workers\")"
      group_by = ["resource.label.subscription_id"]
      explain  = "Pub/Sub moved a work message to `work-dead-letter` after ${var.work_max_attempts} deliveries no answer acknowledged: the worker was killed (out of memory, timeout, crash) on every attempt, or refused its push (401/403: the push account lost run.invoker). The merger records it in `${var.dataset}.work_dead_letters`; the worker's Cloud Run request log shows the answers."
    }
  }
}

resource "google_monitoring_alert_policy" "counts" {
  for_each              = local.count_alerts
  display_name          = "Sales-intelligence pipeline: ${each.value.title}"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "${each.value.title}: count > 0 in 5 minutes"
    condition_threshold {
      filter          = each.value.filter
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = each.value.group_by
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
    content   = each.value.explain
  }
}

moved {
  from = google_monitoring_alert_policy.failed_runs
  to   = google_monitoring_alert_policy.counts["failed_runs"]
}

# The scheduled checks. Each query returns the rows that are wrong; the script around it fails naming them.
locals {
  scheduled_sources = distinct([for job in values(local.jobs) : trimsuffix(job.function, "_sync")])
  freshness_limits = join("\n  UNION ALL ", [
    for source, hours in local.stale_after_hours :
    "SELECT '${source}' AS source, ${hours * 3600} AS stale_after_seconds" if contains(local.scheduled_sources, source)
  ])
  checks = {
    stale_streams = {
      title    = "a source or stream is stale"
      schedule = "every 1 hours"
      query = replace(replace(file("${local.repo_root}/bigquery/monitoring/stale_streams.sql"),
      "$${limits}", local.freshness_limits), "$${dataset}", var.dataset)
      explain = "A scheduled source had no successful run within twice its schedule's longest gap (each source's source.yaml `schedule`), or a stream of it ran and never succeeded in that time. Each row in the check's error names the source and stream (stream null: the whole source). Look at its runs in `${var.dataset}.etl_runs`; a source with no runs at all means its Cloud Scheduler job is paused, failing or gone (`gcloud scheduler jobs list`). After a first deploy this fires until each source's first success: run each job once (docs/SETUP.md)."
    }
    rejected_records_rise = {
      title    = "rejected records rose"
      schedule = "every 24 hours"
      query = replace(replace(file("${local.repo_root}/bigquery/monitoring/rejected_records_rise.sql"),
      "$${minimum}", tostring(var.rejected_records_alert_minimum)), "$${dataset}", var.dataset)
      explain = "A source rejected at least ${var.rejected_records_alert_minimum} records in the last 24 hours, more than twice its daily average of the week before: an API change or a new kind of bad record. `${var.dataset}.rejected_records` holds each record with its reason."
    }
  }
}

# With no scheduled source deployed there is nothing to be stale (and no limits to fill in).
resource "google_bigquery_data_transfer_config" "checks" {
  for_each             = { for name, check in local.checks : name => check if name != "stale_streams" || length(local.scheduled_sources) > 0 }
  display_name         = "sales-intelligence check: ${each.value.title}"
  location             = var.bigquery_location
  data_source_id       = "scheduled_query"
  schedule             = each.value.schedule
  service_account_name = google_service_account.monitor.email
  params = {
    query = <<-EOT
      DECLARE found STRING DEFAULT (SELECT STRING_AGG(TO_JSON_STRING(t), '; ') FROM (
      ${each.value.query}
      ) AS t);
      IF found IS NOT NULL THEN
        RAISE USING MESSAGE = CONCAT('${each.key}: ', found);
      END IF;
    EOT
  }
  depends_on = [google_project_service.apis, google_bigquery_table.tables, google_bigquery_dataset_iam_member.monitor_viewer,
  google_project_iam_member.monitor_job_user]
}

resource "google_monitoring_alert_policy" "checks" {
  for_each              = google_bigquery_data_transfer_config.checks
  display_name          = "Sales-intelligence pipeline: ${local.checks[each.key].title}"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "The ${each.key} check failed"
    condition_matched_log {
      # The config id is the last part of the transfer config's name (projects/N/locations/L/transferConfigs/ID).
      filter = <<-EOT
        resource.type="bigquery_dts_config"
        resource.labels.config_id="${element(split("/", each.value.name), 5)}"
        severity>=ERROR
      EOT
    }
  }

  alert_strategy {
    notification_rate_limit {
      period = "3600s"
    }
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "${local.checks[each.key].explain} If the error is not a list of rows, the check itself is broken (its service account's access, or the table)."
  }
}

# Queue mode: rows landed and not merged for 15 minutes. The merger runs every minute; a backlog this old means
# it is failing, down, or its scheduler job is paused (the rows wait on landed-rows for 7 days, nothing is lost
# yet).
resource "google_monitoring_alert_policy" "landing_backlog" {
  display_name          = "Sales-intelligence pipeline: landed rows are waiting for the merger"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "landed-rows-merger's oldest unacknowledged message is over 15 minutes old"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${google_pubsub_subscription.landed_rows_merger.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 900
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
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
    content   = "Rows the queue-mode workers landed have waited over 15 minutes on `${google_pubsub_subscription.landed_rows_merger.name}`: the landing_merger function is failing or down (its Cloud Run log; a 'function invocation failed' alert may name it), or the `landing-merger` scheduler job is paused or gone (`gcloud scheduler jobs describe landing-merger`). The rows stay for 7 days; fix the merger and it folds them in. Until then the tables lag behind the sources."
  }
}
