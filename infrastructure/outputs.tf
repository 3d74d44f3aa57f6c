output "function_urls" {
  description = "HTTPS URL of each function (authenticated: an identity token with run.invoker is needed)."
  value       = { for name, fn in google_cloudfunctions2_function.functions : name => fn.service_config[0].uri }
}

output "error_topic" {
  description = "Pub/Sub topic that receives run errors."
  value       = google_pubsub_topic.errors.id
}

output "runtime_service_account" {
  description = "Service account the functions run as."
  value       = google_service_account.runtime.email
}

output "scheduler_jobs" {
  description = "Cloud Scheduler jobs created from config/schedules.yaml."
  value       = keys(google_cloud_scheduler_job.jobs)
}
