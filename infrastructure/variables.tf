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

variable "notification_channels" {
  description = "Cloud Monitoring notification channel ids (projects/P/notificationChannels/N) alerted when a run fails."
  type        = list(string)
  default     = []
}

variable "deletion_protection" {
  description = "Protect the BigQuery tables from terraform destroy."
  type        = bool
  default     = true
}

variable "secret_names" {
  description = "Secret Manager secrets the functions read (created empty; scripts/setup_secrets.sh adds values)."
  type        = list(string)
  default = [
    "salesforce-username", "salesforce-password", "salesforce-security-token", "salesforce-client-id",
    "salesforce-client-secret", "salesforce-refresh-token", "dialpad-api-key", "hubspot-api-key",
    "gmail-service-account-key",
  ]
}

# The deployed functions and their sizes are config/functions.yaml (also read by deploy_functions.sh).
variable "deployed_functions" {
  description = "Entry points of config/functions.yaml to deploy (empty: all of them)."
  type        = list(string)
  default     = []
}
