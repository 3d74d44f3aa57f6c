variable "project_id" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Region of the functions, scheduler jobs and source bucket."
  type        = string
  default     = "us-central1"
}

variable "dataset" {
  description = "BigQuery dataset."
  type        = string
  default     = "sales_intelligence"
}

variable "bigquery_location" {
  description = "BigQuery location of the dataset."
  type        = string
  default     = "US"
}

variable "staging_expiration_hours" {
  description = "Default lifetime of the scratch dataset's tables (STAGING_EXPIRATION_HOURS)."
  type        = number
  default     = 6
}

variable "error_topic" {
  description = "Pub/Sub topic for run errors."
  type        = string
  default     = "ingestion-errors"
}

variable "mailboxes" {
  description = "Gmail mailboxes to sync (domain-wide delegation)."
  type        = list(string)
  default     = []
}

variable "default_phone_region" {
  description = "Region for national phone numbers."
  type        = string
  default     = "US"
}

variable "salesforce_domain" {
  description = "Salesforce login host (SALESFORCE_DOMAIN): login (production), test (sandbox orgs) or a My Domain as <name>.my (https://<name>.my.salesforce.com)."
  type        = string
  default     = "login"
}

variable "salesforce_instance_url" {
  description = "Salesforce instance URL for session-id authentication (SALESFORCE_INSTANCE_URL, with the salesforce-session-id secret); empty: not used."
  type        = string
  default     = ""
}

variable "salesforce_custom_fields" {
  description = "Custom fields the Salesforce sync reads per object (SALESFORCE_CUSTOM_FIELDS); [\"*\"]: all of the object's."
  type        = map(list(string))
  default     = {}
}

variable "salesforce_formula_fields" {
  description = "Formula fields the Salesforce sync reads per object, opt-in (SALESFORCE_FORMULA_FIELDS)."
  type        = map(list(string))
  default     = {}
}

variable "salesforce_formula_refresh_hours" {
  description = "An object with formula fields is synced in full when none started within this many hours."
  type        = number
  default     = 24
}

variable "hubspot_webhook_url" {
  description = "The HubSpot app's webhook target URL as configured in HubSpot (the hubspot-webhook function's URL, known after the first apply); its signature v3 covers it."
  type        = string
  default     = ""
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channel ids (projects/P/notificationChannels/N) every alert notifies: failed or abandoned runs, failed invocations, stale streams, rejected records rising."
  type        = list(string)
  default     = []
}

variable "deletion_protection" {
  description = "Protect the BigQuery tables from terraform destroy."
  type        = bool
  default     = true
}

# The deployed functions, their sizes, the secrets and the settings passed are config/functions.yaml (also
# read by deploy_functions.sh and setup_secrets.sh).
variable "deployed_functions" {
  description = "Entry points of config/functions.yaml to deploy (empty: all of them)."
  type        = list(string)
  default     = []
}

variable "partition_expiration_days" {
  description = "Days a table's partitions are kept, per table, overriding tables.yaml's expiration_days (rejected_records 90, etl_runs 400); 0: kept for ever."
  type        = map(number)
  default     = {}
}

variable "rejected_records_alert_minimum" {
  description = "The rejected-records alert fires for a source that rejected at least this many records in a day, and more than twice its daily average of the 7 days before."
  type        = number
  default     = 50
}

# Queue mode (README "Queue mode"): the topics, subscriptions, workers and merger exist in both modes; DISPATCH
# decides whether a trigger runs its streams itself (inline) or publishes one work message per stream (queue).
variable "dispatch" {
  description = "DISPATCH of every function: inline (a trigger runs its source's streams in its own invocation) or queue (it publishes one work message per stream to the source's workers; the merger runs every minute)."
  type        = string
  default     = "inline"
  validation {
    condition     = contains(["inline", "queue"], var.dispatch)
    error_message = "dispatch is inline or queue."
  }
}

variable "work_max_attempts" {
  description = "Deliveries of a work message before it is dead-lettered (WORK_MAX_ATTEMPTS, and the work subscriptions' max_delivery_attempts: 5 to 100)."
  type        = number
  default     = 5
  validation {
    condition     = var.work_max_attempts >= 5 && var.work_max_attempts <= 100
    error_message = "Pub/Sub's max_delivery_attempts is 5 to 100."
  }
}

variable "work_max_chain" {
  description = "Continuations one work message may chain (WORK_MAX_CHAIN: a backfill's runs back to back); past it the schedule resumes the stream."
  type        = number
  default     = 1000
}

variable "merge_interval_seconds" {
  description = "Queue mode: the merger folds what was landed into the tables this often (MERGE_INTERVAL_SECONDS)."
  type        = number
  default     = 20
}

variable "drop_bucket_name" {
  description = "Bucket CRM exports and mbox archives are dropped in (empty: <project>-sales-intel-drops)."
  type        = string
  default     = ""
}

variable "drop_retention_days" {
  description = "Dropped files are deleted this many days after they are dropped (their rows stay)."
  type        = number
  default     = 400
}

variable "file_drop_mappings" {
  description = "FILE_DROP_MAPPINGS: per file-name pattern, the CRM, columns and locale of exports detection gets wrong."
  type        = map(any)
  default     = {}
}
