# One Cloud Scheduler job per entry of config/schedules.yaml (jobs and push_jobs) whose function is deployed
# (config/functions.yaml, var.deployed_functions): a POST of the job's JSON body with an OIDC token of the scheduler account.
locals {
  schedules = yamldecode(file("${local.repo_root}/config/schedules.yaml"))
  jobs      = { for job in local.schedules.jobs : job.name => job if contains(keys(local.functions), job.function) }
  # Push jobs (Gmail's watch renewal, the Salesforce probe) are scheduled alike but are not syncs: no freshness.
  push_jobs = { for job in local.schedules.push_jobs : job.name => job if contains(keys(local.functions), job.function) }
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
