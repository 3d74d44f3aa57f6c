# One Cloud Scheduler job per job of a registered source (its source.yaml `schedule`, calling its entry point) and
# of config/schedules.yaml, whose function is deployed (var.deployed_functions): a POST of the job's JSON body with
# an OIDC token of the scheduler account. config/schedules.py reads the same files the same way.
locals {
  schedules = yamldecode(file("${local.repo_root}/config/schedules.yaml"))
  all_jobs = concat(flatten([for entry_point, source in local.sources :
  [for job in source.schedule.jobs : merge(job, { function = entry_point })]]), local.schedules.jobs)
  stale_after_hours = merge({ for source in values(local.sources) : source.name => source.schedule.stale_after_hours },
  local.schedules.freshness.stale_after_hours)
  jobs = { for job in local.all_jobs : job.name => job if contains(keys(local.functions), job.function) }
  # Push jobs (Gmail's watch renewal, the Salesforce probe) are scheduled alike but are not syncs: no freshness.
  # Queue mode only: push rides on the work queue and its merger (inline, the schedules alone keep data fresh).
  push_jobs = { for job in local.schedules.push_jobs : job.name => job
  if var.dispatch == "queue" && contains(keys(local.functions), job.function) }
}

resource "google_cloud_scheduler_job" "jobs" {
  for_each         = merge(local.jobs, local.push_jobs)
  name             = each.key
  description      = each.value.description
  schedule         = each.value.schedule
  time_zone        = local.schedules.time_zone
  region           = var.region
  attempt_deadline = try(each.value.attempt_deadline, local.schedules.defaults.attempt_deadline)

  retry_config {
    retry_count          = try(each.value.retry.retry_count, local.schedules.defaults.retry.retry_count)
    min_backoff_duration = try(each.value.retry.min_backoff, local.schedules.defaults.retry.min_backoff)
    max_backoff_duration = try(each.value.retry.max_backoff, local.schedules.defaults.retry.max_backoff)
    max_doublings        = try(each.value.retry.max_doublings, local.schedules.defaults.retry.max_doublings)
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.functions[each.value.function].service_config[0].uri
    body        = base64encode(jsonencode(each.value.body))
    headers     = { "Content-Type" = "application/json" }
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.functions[each.value.function].service_config[0].uri
    }
  }

  depends_on = [google_project_service.apis]
}

# Queue mode: the merger folds what the workers landed, every minute for 50 s, alone (landing_merger's
# max_instances is 1 and it takes one request at a time, so a call arriving while one runs waits or fails, and
# the next minute's call retries it). Only when var.dispatch is "queue": in inline mode nothing is landed.
resource "google_cloud_scheduler_job" "landing_merger" {
  count            = var.dispatch == "queue" && contains(keys(local.functions), "landing_merger") ? 1 : 0
  name             = "landing-merger"
  description      = "Merge the rows queue-mode workers landed into the tables (one MERGE per table and column set per cycle)."
  schedule         = "* * * * *"
  time_zone        = local.schedules.time_zone
  region           = var.region
  attempt_deadline = "${local.functions["landing_merger"].timeout_seconds}s"

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.functions["landing_merger"].service_config[0].uri
    body        = base64encode(jsonencode({ seconds = 50 }))
    headers     = { "Content-Type" = "application/json" }
    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.functions["landing_merger"].service_config[0].uri
    }
  }

  depends_on = [google_project_service.apis]
}
