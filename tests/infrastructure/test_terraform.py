"""The Terraform, read with python-hcl2 and checked against the code it deploys."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest
import yaml

import main
from config.functions import deployment, function_sizes
from warehouse.schemas import SCHEMA_DIR, load_table_specs

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infrastructure"
EXPECTED_JOBS = {
    "gmail-incremental-sync": "0 * * * *", "gmail-full-sync": "0 2 * * *",
    "salesforce-incremental-sync": "0 */6 * * *", "salesforce-full-sync": "0 3 * * 0",
    "dialpad-sync": "0 1 * * *", "hubspot-sync": "0 4 * * *", "entity-resolution": "30 */4 * * *",
    "account-recommendations": "0 6 * * *",
}


def unquote(value):
    """python-hcl2 keeps string quotes; strip them recursively."""
    if isinstance(value, str):
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if k != "__is_block__"}
    return value


@pytest.fixture(scope="module")
def terraform():
    """Every .tf file merged: {"resource": {type: {name: body}}, "variable": {...}, "locals": {...}}."""
    merged = {"resource": {}, "variable": {}, "locals": {}, "data": {}}
    for path in sorted(INFRA.glob("*.tf")):
        with path.open() as handle:
            parsed = unquote(hcl2.load(handle))
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                merged["resource"].setdefault(kind, {}).update(named)
        for block in parsed.get("variable", []):
            merged["variable"].update(block)
        for block in parsed.get("locals", []):
            merged["locals"].update(block)
    return merged


@pytest.fixture(scope="module")
def schedules():
    """config/schedules.yaml with the registered sources' jobs and freshness (config/schedules.py)."""
    from config.schedules import schedules

    return schedules()


def deployed(terraform) -> set[str]:
    """The functions Terraform deploys by default: all of config/functions.yaml and the registered sources'."""
    assert terraform["variable"]["deployed_functions"]["default"] == []
    assert 'yamldecode(file("${local.repo_root}/config/functions.yaml"))' in terraform["locals"]["deployment"]
    assert "local.deployment.functions" in terraform["locals"]["all_functions"]
    return set(function_sizes())


DEPLOYMENT_LOCALS = ("deployment", "sources", "source_workers", "all_functions", "secrets", "schedules", "all_jobs", "stale_after_hours")


@pytest.mark.skipif(shutil.which("terraform") is None, reason="needs the terraform binary")
def test_terraform_reads_the_deployment_the_scripts_read(terraform, tmp_path):
    """Terraform's own evaluation of its deployment locals (terraform console; no provider, nothing planned) gives
    the functions, sizes, secrets, scheduler jobs and freshness config/functions.py and config/schedules.py give
    the scripts: every registered source's declaration included, none listed twice."""
    body = "\n".join(f"  {name} = {terraform['locals'][name][2:-1]}" for name in DEPLOYMENT_LOCALS)
    (tmp_path / "main.tf").write_text(f'locals {{\n  repo_root = "{ROOT}"\n{body}\n}}\n')
    asked = "jsonencode({f = local.all_functions, s = local.secrets, j = local.all_jobs, h = local.stale_after_hours})"
    answer = subprocess.run(["terraform", "console"], input=asked,
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True)
    evaluated = json.loads(json.loads(answer.stdout.strip().splitlines()[-1]))
    assert evaluated["s"] == list(deployment().secrets)
    assert evaluated["f"] == {name: {"memory": size.memory, "timeout_seconds": size.timeout_seconds,
                                     "max_instances": size.max_instances,
                                     **({"trigger": size.trigger} if size.trigger != "http" else {}),
                                     **({"public": True} if size.public else {})}
                              for name, size in function_sizes().items()}
    from config.schedules import schedules

    assert evaluated["j"] == schedules()["jobs"]
    assert evaluated["h"] == schedules()["freshness"]["stale_after_hours"]


def test_every_entry_point_is_deployed(terraform):
    """The functions Terraform deploys are exactly the entry points main.py exports."""
    assert deployed(terraform) == set(main.__all__)
    fn = terraform["resource"]["google_cloudfunctions2_function"]["functions"]
    assert fn["for_each"] == "${local.functions}"
    build = fn["build_config"][0]
    assert build["runtime"] == "python311" and build["entry_point"] == "${each.key}"
    service = fn["service_config"][0]
    assert service["service_account_email"] == "${google_service_account.runtime.email}"
    for name in ("available_memory", "timeout_seconds", "max_instance_count"):
        assert service[name].startswith("${each.value."), name


def test_the_jobs_have_their_crons(schedules):
    """The eight jobs of the first four sources, entity resolution and recommendations with their crons (a source
    registered since adds its own), each with a body, and a time zone and retry defaults."""
    from config.sources import registered

    crons = {j["name"]: j["schedule"] for j in schedules["jobs"]}
    assert {name: crons.get(name) for name in EXPECTED_JOBS} == EXPECTED_JOBS
    newer = {s.entry_point for name, s in registered().items() if name not in ("gmail", "salesforce", "dialpad", "hubspot")}
    assert {j["function"] for j in schedules["jobs"] if j["name"] not in EXPECTED_JOBS} <= newer
    assert schedules["time_zone"] and schedules["defaults"]["retry"]["retry_count"] >= 1
    assert all(isinstance(j["body"], dict) and j["function"] for j in schedules["jobs"])


def test_every_schedule_becomes_a_job_aimed_at_an_entry_point(terraform, schedules):
    """Jobs (and push jobs) come from schedules.yaml, filtered to deployed functions, and POST to that function's
    URI."""
    locals_ = terraform["locals"]
    assert 'yamldecode(file("${local.repo_root}/config/schedules.yaml"))' in locals_["schedules"]
    assert "contains(keys(local.functions), job.function)" in locals_["jobs"]
    assert "contains(keys(local.functions), job.function)" in locals_["push_jobs"]
    job = terraform["resource"]["google_cloud_scheduler_job"]["jobs"]
    assert job["for_each"] == "${merge(local.jobs, local.push_jobs)}"
    target = job["http_target"][0]
    assert target["uri"] == "${google_cloudfunctions2_function.functions[each.value.function].service_config[0].uri}"
    assert target["oidc_token"][0]["service_account_email"] == "${google_service_account.scheduler.email}"
    for entry in schedules["jobs"] + schedules["push_jobs"]:
        assert entry["function"] in deployed(terraform) and callable(getattr(main, entry["function"]))


def test_every_table_schema_becomes_a_partitioned_clustered_table(terraform):
    """Tables are for_each over tables.yaml, with the schema file, partitioning and clustering of each."""
    assert 'yamldecode(file("${local.repo_root}/bigquery/schemas/tables.yaml"))' in terraform["locals"]["tables_layout"]
    table = terraform["resource"]["google_bigquery_table"]["tables"]
    assert table["for_each"] == "${local.tables_layout}"
    assert table["schema"] == '${file("${local.repo_root}/bigquery/schemas/${each.key}.json")}'
    assert table["clustering"] == "${try(each.value.cluster, null)}"
    partitioning = table["dynamic"][0]["time_partitioning"]
    assert "each.value.partition" in partitioning["for_each"]
    content = partitioning["content"][0]
    assert (content["type"], content["field"]) == ("${time_partitioning.value.type}", "${time_partitioning.value.field}")
    layout = yaml.safe_load((SCHEMA_DIR / "tables.yaml").read_text())
    assert {p.stem for p in SCHEMA_DIR.glob("*.json")} == set(layout) == set(load_table_specs())


def test_views_are_created(terraform):
    """Each bigquery/views/*.sql runs as a query job with the dataset filled in."""
    job = terraform["resource"]["google_bigquery_job"]["views"]
    assert 'fileset("${local.repo_root}/bigquery/views", "*.sql")' in terraform["locals"]["view_files"]
    jobs = terraform["locals"]["view_jobs"]
    assert "local.view_files" in job["for_each"] and "var.dataset" in jobs and "sha256(file(" in jobs
    assert job["query"][0]["query"] == "${each.value.query}" and job["job_id"] == "${each.value.job_id}"
    derived = terraform["resource"]["google_bigquery_job"]["derived_views"]
    assert 'bigquery/views/derived", "*.sql")' in terraform["locals"]["derived_view_files"]
    assert "local.derived_view_files" in derived["for_each"] and derived["query"][0]["query"] == "${each.value.query}"
    assert derived["depends_on"] == ["${google_bigquery_job.views}"]


def test_failed_runs_raise_an_alert(terraform):
    """A log-based metric counts the "run failed" lines per source; an alert policy on it notifies the channels
    of var.notification_channels."""
    metric = terraform["resource"]["google_logging_metric"]["failed_runs"]
    assert 'jsonPayload.message="run failed"' in metric["filter"] and "severity>=ERROR" in metric["filter"]
    assert metric["label_extractors"]["source"] == "EXTRACT(jsonPayload.source)"
    policy = terraform["resource"]["google_monitoring_alert_policy"]["counts"]
    assert policy["for_each"] == "${local.count_alerts}"
    assert policy["notification_channels"] == "${var.notification_channels}"
    threshold = policy["conditions"][0]["condition_threshold"][0]
    assert threshold["filter"] == "${each.value.filter}" and threshold["aggregations"][0]["group_by_fields"] == \
        "${each.value.group_by}"
    assert "${google_logging_metric.failed_runs.name}" in terraform["locals"]["count_alerts"]["failed_runs"]["filter"]
    assert threshold["comparison"] == "COMPARISON_GT" and threshold["threshold_value"] == 0
    assert terraform["variable"]["notification_channels"]["type"] == "${list(string)}"


def test_salesforce_field_settings_reach_the_functions(terraform):
    """The org's custom and formula fields are Terraform variables, passed to the functions as the JSON settings."""
    environment = terraform["locals"]["setting_values"]
    assert environment["SALESFORCE_CUSTOM_FIELDS"] == "${jsonencode(var.salesforce_custom_fields)}"
    assert environment["SALESFORCE_FORMULA_FIELDS"] == "${jsonencode(var.salesforce_formula_fields)}"
    assert environment["SALESFORCE_FORMULA_REFRESH_HOURS"] == "${tostring(var.salesforce_formula_refresh_hours)}"
    assert terraform["variable"]["salesforce_custom_fields"]["type"] == "${map(list(string))}"


def test_scratch_dataset_expires_its_tables(terraform):
    """Staging and work tables go to a scratch dataset whose tables expire by default; the functions know its name."""
    scratch = terraform["resource"]["google_bigquery_dataset"]["scratch"]
    assert scratch["default_table_expiration_ms"] == "${var.staging_expiration_hours * 3600 * 1000}"
    environment = terraform["locals"]["setting_values"]
    assert environment["BIGQUERY_SCRATCH_DATASET"] == "${google_bigquery_dataset.scratch.dataset_id}"
    assert environment["STAGING_EXPIRATION_HOURS"] == "${tostring(var.staging_expiration_hours)}"
    editor = terraform["resource"]["google_bigquery_dataset_iam_member"]["runtime_editor"]
    assert editor["for_each"]["scratch"] == "${google_bigquery_dataset.scratch.dataset_id}"


def test_gmail_push_is_triggered_by_its_topic_with_retries(terraform):
    """A function with trigger topic:<name> (gmail_push only) gets an Eventarc Pub/Sub trigger on that topic, retried,
    delivered as the scheduler account; the topic exists, and Gmail's push account is its only publisher."""
    from config.functions import function_sizes

    assert {n for n, s in function_sizes().items() if s.trigger.startswith("topic:")} == {"gmail_push"}
    resources = terraform["resource"]
    (trigger,) = [block for block in resources["google_cloudfunctions2_function"]["functions"]["dynamic"]
                  if "pubsub" in block["event_trigger"]["content"][0]["event_type"]]
    content = trigger["event_trigger"]["content"][0]
    assert content["pubsub_topic"] == "${google_pubsub_topic.push[event_trigger.value].id}"
    assert content["retry_policy"] == "RETRY_POLICY_RETRY"
    assert content["service_account_email"] == "${google_service_account.scheduler.email}"
    publisher = resources["google_pubsub_topic_iam_member"]["gmail_publishes_push"]
    assert (publisher["role"], publisher["member"]) == ("roles/pubsub.publisher",
                                                        "serviceAccount:gmail-api-push@system.gserviceaccount.com")


def test_only_the_webhooks_are_public(terraform):
    """allUsers is granted once, run.invoker on the functions functions.yaml marks public, which are exactly the two
    webhook receivers; allAuthenticatedUsers never."""
    from config.functions import function_sizes

    text = "\n".join(p.read_text() for p in INFRA.glob("*.tf"))
    assert len(re.findall(r"allUsers", text)) == 1 and "allAuthenticatedUsers" not in text
    public = terraform["resource"]["google_cloud_run_service_iam_member"]["webhook_public_invoker"]
    assert (public["member"], public["role"], public["for_each"]) == ("allUsers", "roles/run.invoker",
                                                                      "${local.public_functions}")
    assert {name for name, size in function_sizes().items() if size.public} == {"hubspot_webhook", "dialpad_webhook"}


def test_runtime_account_has_least_privilege(terraform):
    """Project-wide the runtime account is only a BigQuery job user; never editor or owner."""
    project_roles = {r["role"] for r in terraform["resource"].get("google_project_iam_member", {}).values()
                     if r["member"] == "${local.runtime_member}"}
    assert project_roles == {"roles/bigquery.jobUser"}
    text = "\n".join(p.read_text() for p in INFRA.glob("*.tf"))
    assert not re.search(r"roles/(editor|owner)\b", text)
    resources = terraform["resource"]
    assert resources["google_bigquery_dataset_iam_member"]["runtime_editor"]["role"] == "roles/bigquery.dataEditor"
    assert resources["google_secret_manager_secret_iam_member"]["runtime_secret_accessor"]["for_each"] == \
        "${google_secret_manager_secret.secrets}"
    publisher = resources["google_pubsub_topic_iam_member"]["publisher"]
    assert publisher["role"] == "roles/pubsub.publisher"
    assert publisher["for_each"]["runtime"]["member"] == "${local.runtime_member}"
    invoker = resources["google_cloud_run_service_iam_member"]["scheduler_invoker"]
    assert invoker["role"] == "roles/run.invoker" and "scheduler" in invoker["member"]


def test_error_topic_has_a_dead_letter(terraform):
    """ingestion-errors has a subscription whose undeliverable messages go to a dead-letter topic."""
    assert terraform["variable"]["error_topic"]["default"] == "ingestion-errors"
    subscription = terraform["resource"]["google_pubsub_subscription"]["errors"]
    assert subscription["dead_letter_policy"][0]["dead_letter_topic"] == "${google_pubsub_topic.errors_dead_letter.id}"


def test_the_source_archive_leaves_out_what_gcloudignore_does(terraform):
    """Terraform's zip excludes every .gcloudignore entry (local secrets and .env among them), and adds only
    the same patterns at any depth: deploying with Terraform or with gcloud uploads the same files."""
    with (INFRA / "main.tf").open() as handle:
        (archive,) = [block["archive_file"]["source"] for block in unquote(hcl2.load(handle)).get("data", [])
                      if "archive_file" in block]
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".gcloudignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    excludes = set(archive["excludes"])
    assert {".env", "secrets.local.json", ".local"} <= ignored
    assert ignored <= excludes and {e.removeprefix("**/") for e in excludes} == ignored


def test_the_source_bucket_enforces_public_access_prevention(terraform):
    """The bucket holding the function source can never be made public."""
    assert terraform["resource"]["google_storage_bucket"]["source"]["public_access_prevention"] == "enforced"


def test_scheduler_deadline_function_timeout_and_run_budget_agree(terraform, schedules):
    """Per function: the run budget ends a run before the function's timeout, the timeout reaches the code as
    FUNCTION_TIMEOUT_SECONDS (abandoned runs, leases), and no scheduler job gives up before the function does."""
    from config.settings import Settings

    budget = Settings.model_fields["run_time_budget_seconds"].default
    functions = {name: {"timeout_seconds": size.timeout_seconds} for name, size in function_sizes().items()}
    (service,) = terraform["resource"]["google_cloudfunctions2_function"]["functions"]["service_config"]
    assert "FUNCTION_TIMEOUT_SECONDS" in str(service["environment_variables"])
    assert "tostring(each.value.timeout_seconds)" in str(service["environment_variables"])
    assert Settings.model_fields["function_timeout_seconds"].default == functions["salesforce_sync"]["timeout_seconds"]
    for job in schedules["jobs"]:
        timeout = functions[job["function"]]["timeout_seconds"]
        deadline = int(str(job.get("attempt_deadline", schedules["defaults"]["attempt_deadline"])).rstrip("s"))
        assert deadline >= timeout, job["name"]
        if job["function"] != "entity_resolution":  # it has no page loop to budget
            assert budget < timeout, job["name"]


def test_every_skipped_checkov_check_is_justified_in_place():
    """A `checkov:skip=CKV_...` comment always says why, inside the resource it skips; the pinned checkov runs
    in CI (`make checkov`)."""
    skips = [m for p in INFRA.glob("*.tf") for m in re.finditer(r"checkov:skip=(\S+?):(.*)", p.read_text())]
    assert skips
    for skip in skips:
        assert re.fullmatch(r"CKV_GCP_\d+", skip.group(1)) and len(skip.group(2).strip()) > 30, skip.group(0)
    assert "make checkov" in (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^checkov==\d+\.\d+\.\d+$", (ROOT / "requirements-checkov.txt").read_text(), re.M)


# Each resource type (by prefix) and the API it needs, plus the APIs the functions' code calls itself.
APIS_OF_RESOURCES = {
    "google_bigquery_data_transfer_config": "bigquerydatatransfer.googleapis.com",
    "google_bigquery_": "bigquery.googleapis.com",
    "google_cloudfunctions2_": "cloudfunctions.googleapis.com",
    "google_cloud_run_": "run.googleapis.com",
    "google_cloud_scheduler_": "cloudscheduler.googleapis.com",
    "google_eventarc_": "eventarc.googleapis.com",
    "google_pubsub_": "pubsub.googleapis.com",
    "google_secret_manager_": "secretmanager.googleapis.com",
    "google_service_account": "iam.googleapis.com",
    "google_project_iam_": "cloudresourcemanager.googleapis.com",
    "google_storage_": "storage.googleapis.com",
    "google_logging_": "logging.googleapis.com",
    "google_monitoring_": "monitoring.googleapis.com",
}
# Cloud Functions gen2 builds with Cloud Build into Artifact Registry and runs on Cloud Run; the scheduler signs
# OIDC tokens through IAM credentials; data "google_project" reads the project number; the code reads Gmail.
APIS_BEYOND_RESOURCES = {"cloudbuild.googleapis.com", "artifactregistry.googleapis.com", "run.googleapis.com",
                         "iamcredentials.googleapis.com", "cloudresourcemanager.googleapis.com",
                         "gmail.googleapis.com"}


def enabled_apis(terraform) -> set[str]:
    return set(re.findall(r'"([a-z]+\.googleapis\.com)"',
                          terraform["resource"]["google_project_service"]["apis"]["for_each"]))


def test_every_api_used_is_enabled(terraform):
    """Each resource type's API, and the APIs the code and the build need, are enabled (iam.googleapis.com among
    them: a fresh project cannot create the service accounts without it)."""
    needed = set(APIS_BEYOND_RESOURCES)
    for kind in terraform["resource"]:
        if kind == "google_project_service":
            continue
        matches = [api for prefix, api in APIS_OF_RESOURCES.items() if kind.startswith(prefix)]
        assert matches, f"{kind}: which API does it need? (add it to APIS_OF_RESOURCES)"
        needed.add(matches[0])
    assert needed <= enabled_apis(terraform), sorted(needed - enabled_apis(terraform))
    assert "iam.googleapis.com" in enabled_apis(terraform)


def test_terraform_passes_exactly_the_settings_of_functions_yaml(terraform):
    """The functions' environment is functions.yaml's fixed settings plus a value for each of its `settings`
    (a Terraform value for each, none beyond), and each is a setting the code reads."""
    from config.functions import deployment
    from config.settings import Settings

    config = deployment()
    locals_ = terraform["locals"]
    assert set(locals_["setting_values"]) == set(config.settings)
    assert locals_["environment"] == ("${merge(local.deployment.environment, {for name in local.deployment.settings "
                                      ": name => local.setting_values[name]})}")
    names = {*config.settings, *config.environment, "FUNCTION_TIMEOUT_SECONDS"}
    assert {n.lower() for n in names} <= set(Settings.model_fields)
    assert not set(config.settings) & set(config.environment)


def test_salesforce_domain_and_instance_url_are_variables(terraform):
    """SALESFORCE_DOMAIN (login, test or a My Domain) and the session-id instance URL are Terraform variables."""
    values = terraform["locals"]["setting_values"]
    assert values["SALESFORCE_DOMAIN"] == "${var.salesforce_domain}"
    assert terraform["variable"]["salesforce_domain"]["default"] == "login"
    assert values["SALESFORCE_INSTANCE_URL"] == "${var.salesforce_instance_url}"


def test_secrets_come_from_functions_yaml_and_the_sources(terraform):
    """Terraform creates, and grants the runtime account, exactly the deployment's secrets (no second list)."""
    secret = terraform["resource"]["google_secret_manager_secret"]["secrets"]
    assert secret["for_each"] == "${toset(local.secrets)}"
    assert "secret_names" not in terraform["variable"]


def test_rejected_records_and_etl_runs_partitions_expire(terraform):
    """rejected_records keeps 90 days of partitions and etl_runs 400 (tables.yaml, overridable per table by
    var.partition_expiration_days); Terraform's tables and the BigQuery DDL both carry it."""
    layout = yaml.safe_load((SCHEMA_DIR / "tables.yaml").read_text())
    assert layout["rejected_records"]["partition"]["expiration_days"] == 90
    assert layout["etl_runs"]["partition"]["expiration_days"] == 400
    days = terraform["locals"]["partition_expiration_days"]
    assert "lookup(var.partition_expiration_days, name, try(table.partition.expiration_days, 0))" in days
    assert terraform["variable"]["partition_expiration_days"]["type"] == "${map(number)}"
    content = terraform["resource"]["google_bigquery_table"]["tables"]["dynamic"][0]["time_partitioning"]["content"][0]
    assert "local.partition_expiration_days[each.key] * 86400000" in content["expiration_ms"]
    specs = load_table_specs()
    assert "partition_expiration_days = 90" in specs["rejected_records"].bigquery_ddl("d")
    assert "partition_expiration_days = 400" in specs["etl_runs"].bigquery_ddl("d")
    assert "partition_expiration_days" not in specs["gmail_messages"].bigquery_ddl("d")


class TestAlerts:
    def test_failed_and_abandoned_runs_alert_but_cancelled_ones_do_not(self, terraform):
        """The metric counts the lines pipeline/etl_runs.py logs for a failed run, a failed invocation and runs
        closed as abandoned, at the severity it logs them; "run cancelled" is not counted."""
        code = (ROOT / "pipeline" / "etl_runs.py").read_text()
        metric_filter = terraform["resource"]["google_logging_metric"]["failed_runs"]["filter"]
        for level, message, severity in (("error", "run failed", "ERROR"),
                                         ("error", "invocation failed before its run started", "ERROR"),
                                         ("warning", "runs closed as abandoned", "WARNING")):
            assert f'log.{level}("{message}"' in code, message
            position = metric_filter.index(f'jsonPayload.message="{message}"')
            assert re.findall(r"severity>=(\w+)", metric_filter[:position])[-1] == severity, message
        assert 'log.warning("run cancelled"' in code and "cancelled" not in metric_filter
        alert = terraform["locals"]["count_alerts"]["failed_runs"]
        assert alert["group_by"] == ["metric.label.source", "metric.label.outcome"]

    def test_any_failed_invocation_of_a_function_alerts(self, terraform):
        """Cloud Run's own request count, 4xx and 5xx, of every deployed function's service."""
        condition = terraform["locals"]["count_alerts"]["invocation_errors"]
        assert 'metric.type=\\"run.googleapis.com/request_count\\"' in condition["filter"]
        assert 'response_code_class=one_of(\\"4xx\\", \\"5xx\\")' in condition["filter"]
        assert "local.function_services" in condition["filter"]
        assert terraform["locals"]["function_services"] == \
            '${[for name in keys(local.functions) : replace(name, "_", "-")]}'

    def test_scheduled_checks_fail_and_alert_on_what_they_find(self, terraform):
        """Stale streams hourly and rejected records daily run as queries of the monitor account, wrapped in a
        script that raises naming the rows; the check's ERROR log entry is the alert's condition."""
        checks = terraform["locals"]["checks"]
        assert set(checks) == {"stale_streams", "rejected_records_rise"}
        assert checks["stale_streams"]["schedule"] == "every 1 hours"
        assert "bigquery/monitoring/stale_streams.sql" in checks["stale_streams"]["query"]
        assert "bigquery/monitoring/rejected_records_rise.sql" in checks["rejected_records_rise"]["query"]
        config = terraform["resource"]["google_bigquery_data_transfer_config"]["checks"]
        assert "local.checks" in config["for_each"] and "length(local.scheduled_sources) > 0" in config["for_each"]
        assert config["data_source_id"] == "scheduled_query"
        assert config["service_account_name"] == "${google_service_account.monitor.email}"
        script = config["params"]["query"]
        assert "${each.value.query}" in script and "RAISE USING MESSAGE" in script
        policy = terraform["resource"]["google_monitoring_alert_policy"]["checks"]
        assert policy["for_each"] == "${google_bigquery_data_transfer_config.checks}"
        log_filter = policy["conditions"][0]["condition_matched_log"][0]["filter"]
        assert 'resource.type="bigquery_dts_config"' in log_filter and "severity>=ERROR" in log_filter
        assert 'resource.labels.config_id="${element(split("/", each.value.name), 5)}"' in log_filter
        assert policy["notification_channels"] == "${var.notification_channels}"
        assert policy["alert_strategy"][0]["notification_rate_limit"][0]["period"] == "3600s"

    def test_the_monitor_account_only_reads_the_dataset(self, terraform):
        """The checks' account is a job user and a data viewer of the dataset, nothing more."""
        resources = terraform["resource"]
        assert resources["google_project_iam_member"]["monitor_job_user"]["role"] == "roles/bigquery.jobUser"
        viewer = resources["google_bigquery_dataset_iam_member"]["monitor_viewer"]
        assert viewer["role"] == "roles/bigquery.dataViewer"
        assert viewer["dataset_id"] == "${google_bigquery_dataset.main.dataset_id}"

    def test_freshness_limits_are_twice_each_sources_longest_gap(self, schedules):
        """The stale_after_hours of the sources and schedules.yaml is, per scheduled source, what `run_local check` counts: STALE_FACTOR
        times the longest gap between its runs (recomputed from the crons)."""
        from scripts.run_history import STALE_FACTOR, schedule_gaps

        limits = schedules["freshness"]["stale_after_hours"]
        gaps = schedule_gaps()
        assert set(limits) == set(gaps)
        for source, gap in gaps.items():
            assert limits[source] * 3600 == STALE_FACTOR * gap.total_seconds(), source
        assert max(limits.values()) < 8 * 24, "stale_streams.sql reads eight days of etl_runs"


def test_the_tfvars_example_sets_only_declared_variables(terraform):
    """Every name terraform.tfvars.example sets is a variable (a typo would stop the first apply), SALESFORCE_DOMAIN's
    among them."""
    with (INFRA / "terraform.tfvars.example").open() as handle:
        names = {k for k in hcl2.load(handle) if not k.startswith("__")}
    assert names <= set(terraform["variable"]) and "salesforce_domain" in names


def queue_sources() -> list[str]:
    """The sources with a worker (what local.queue_sources computes from local.all_functions)."""
    return [name.removesuffix("_worker") for name in function_sizes() if name.endswith("_worker")]


class TestQueueMode:
    def test_terraform_declares_what_fan_out_creates_locally(self, terraform):
        """scripts/fan_out.py's ensure_topology (the emulator's topics and subscriptions) and Terraform's agree:
        the same topic and subscription names, ordering and the dead-letter count on each work subscription."""
        from config.settings import Settings
        from scripts.fan_out import ensure_topology

        class Recorder:
            def __init__(self):
                self.topics, self.subscriptions = [], []

            def create_topic(self, name):
                self.topics.append(name.rsplit("/", 1)[1])

            def create_subscription(self, request):
                self.subscriptions.append(request)

        settings = Settings(gcp_project="p")
        recorder = Recorder()
        ensure_topology(settings, queue_sources(), publisher=recorder, subscriber=recorder)
        from config.sources import registered

        assert sorted(queue_sources()) == sorted(name for name, source in registered().items() if source.worker)
        locals_ = terraform["locals"]
        assert 'endswith(name, "_worker")' in locals_["queue_sources"] and "local.all_functions" in locals_["queue_sources"]
        topics = terraform["resource"]["google_pubsub_topic"]
        work_topics = [f"{locals_['work_topic_prefix']}{source}" for source in queue_sources()]
        assert topics["work"]["name"] == "${local.work_topic_prefix}${each.key}"
        assert sorted(recorder.topics) == sorted([topics["work_dead_letter"]["name"], topics["landed_rows"]["name"],
                                                  *work_topics])
        subscriptions = terraform["resource"]["google_pubsub_subscription"]
        declared = {**{f"{topic}-workers": subscriptions["work"] for topic in work_topics},
                    f"{topics['landed_rows']['name']}-merger": subscriptions["landed_rows_merger"],
                    f"{topics['work_dead_letter']['name']}-merger": subscriptions["work_dead_letter_merger"]}
        assert subscriptions["work"]["name"] == "${google_pubsub_topic.work[each.key].name}-workers"
        assert subscriptions["landed_rows_merger"]["name"] == "${google_pubsub_topic.landed_rows.name}-merger"
        assert subscriptions["work_dead_letter_merger"]["name"] == "${google_pubsub_topic.work_dead_letter.name}-merger"
        assert {r["name"].rsplit("/", 1)[1] for r in recorder.subscriptions} == set(declared)
        for request in recorder.subscriptions:
            body = declared[request["name"].rsplit("/", 1)[1]]
            assert request["ack_deadline_seconds"] == body["ack_deadline_seconds"] == 600
            assert request.get("enable_message_ordering", False) == body.get("enable_message_ordering", False)
            assert ("dead_letter_policy" in request) == ("dead_letter_policy" in body)

    def test_the_names_are_the_settings_defaults(self, terraform):
        """The topics Terraform names are the settings' defaults, and reach the functions as those settings."""
        from config.settings import Settings

        defaults = {name: field.default for name, field in Settings.model_fields.items()}
        topics = terraform["resource"]["google_pubsub_topic"]
        assert terraform["locals"]["work_topic_prefix"] == defaults["work_topic_prefix"]
        assert topics["work_dead_letter"]["name"] == defaults["work_dead_letter_topic"]
        assert topics["landed_rows"]["name"] == defaults["landing_topic"]
        values = terraform["locals"]["setting_values"]
        assert values["WORK_TOPIC_PREFIX"] == "${local.work_topic_prefix}"
        assert values["WORK_DEAD_LETTER_TOPIC"] == "${google_pubsub_topic.work_dead_letter.name}"
        assert values["LANDING_TOPIC"] == "${google_pubsub_topic.landed_rows.name}"
        assert values["WORK_MAX_CHAIN"] == "${tostring(var.work_max_chain)}"
        assert values["MERGE_INTERVAL_SECONDS"] == "${tostring(var.merge_interval_seconds)}"
        variables = terraform["variable"]
        assert variables["work_max_chain"]["default"] == defaults["work_max_chain"]
        assert variables["merge_interval_seconds"]["default"] == defaults["merge_interval_seconds"]

    def test_dispatch_is_a_variable_inline_by_default(self, terraform):
        """var.dispatch (inline or queue, default inline) is every function's DISPATCH, the settings' default too."""
        from config.settings import Settings

        variable = terraform["variable"]["dispatch"]
        assert variable["default"] == Settings.model_fields["dispatch"].default == "inline"
        assert 'contains(["inline", "queue"], var.dispatch)' in variable["validation"][0]["condition"]
        assert terraform["locals"]["setting_values"]["DISPATCH"] == "${var.dispatch}"

    def test_each_work_subscription_pushes_to_its_sources_worker(self, terraform):
        """One push subscription per deployed worker: the worker's URL, an OIDC token of that source's push account
        (audience the URL), ordered by stream, 600 s to answer, backoff 10 s to 600 s, kept 7 days, never expiring."""
        work = terraform["resource"]["google_pubsub_subscription"]["work"]
        assert work["for_each"] == "${toset(local.pushed_sources)}"
        assert 'contains(keys(local.functions), "${source}_worker")' in terraform["locals"]["pushed_sources"]
        assert work["topic"] == "${google_pubsub_topic.work[each.key].id}"
        (push,) = work["push_config"]
        worker_uri = '${google_cloudfunctions2_function.functions["${each.key}_worker"].service_config[0].uri}'
        assert push["push_endpoint"] == worker_uri
        assert push["oidc_token"] == [{"service_account_email": "${google_service_account.pusher[each.key].email}",
                                       "audience": worker_uri}]
        for source in queue_sources():
            assert callable(getattr(main, f"{source}_worker"))
        assert work["enable_message_ordering"] is True and work["ack_deadline_seconds"] == 600
        assert work["retry_policy"] == [{"minimum_backoff": "10s", "maximum_backoff": "600s"}]
        assert work["message_retention_duration"] == "${local.seven_days}"
        assert terraform["locals"]["seven_days"] == f"{7 * 86400}s"
        assert work["expiration_policy"] == [{"ttl": ""}]
        assert max(size.timeout_seconds for name, size in function_sizes().items() if name.endswith("_worker")) < 600

    def test_work_is_dead_lettered_after_work_max_attempts(self, terraform):
        """Pub/Sub's dead-letter policy sends a work message to work-dead-letter after WORK_MAX_ATTEMPTS deliveries
        (the variable's default is the setting's), the count at which the worker dead-letters it itself."""
        from config.settings import Settings

        (policy,) = terraform["resource"]["google_pubsub_subscription"]["work"]["dead_letter_policy"]
        assert policy == {"dead_letter_topic": "${google_pubsub_topic.work_dead_letter.id}",
                          "max_delivery_attempts": "${var.work_max_attempts}"}
        variable = terraform["variable"]["work_max_attempts"]
        assert variable["default"] == Settings.model_fields["work_max_attempts"].default == 5
        assert terraform["locals"]["setting_values"]["WORK_MAX_ATTEMPTS"] == "${tostring(var.work_max_attempts)}"
        assert "var.work_max_attempts >= 5 && var.work_max_attempts <= 100" in variable["validation"][0]["condition"]

    def test_the_merger_pulls_landed_rows_and_dead_letters(self, terraform):
        """landed-rows-merger and work-dead-letter-merger are pull subscriptions (no push), 600 s, 7 days, never
        expiring."""
        subscriptions = terraform["resource"]["google_pubsub_subscription"]
        for name in ("landed_rows_merger", "work_dead_letter_merger"):
            body = subscriptions[name]
            assert "push_config" not in body and body["ack_deadline_seconds"] == 600, name
            assert body["message_retention_duration"] == "${local.seven_days}", name
            assert body["expiration_policy"] == [{"ttl": ""}], name

    def test_the_merger_runs_alone_every_minute_in_queue_mode(self, terraform):
        """landing_merger: max_instances 1, one request at a time, called every minute for 50 s by the scheduler
        account only when var.dispatch is queue."""
        assert function_sizes()["landing_merger"].max_instances == 1
        (service,) = terraform["resource"]["google_cloudfunctions2_function"]["functions"]["service_config"]
        assert service["max_instance_request_concurrency"] == 1
        job = terraform["resource"]["google_cloud_scheduler_job"]["landing_merger"]
        assert job["count"] == '${var.dispatch == "queue" && contains(keys(local.functions), "landing_merger") ? 1 : 0}'
        assert job["schedule"] == "* * * * *" and job["retry_config"] == [{"retry_count": 0}]
        (target,) = job["http_target"]
        uri = '${google_cloudfunctions2_function.functions["landing_merger"].service_config[0].uri}'
        assert target["uri"] == uri and target["http_method"] == "POST"
        assert target["body"] == "${base64encode(jsonencode({seconds = 50}))}"
        assert target["oidc_token"] == [{"service_account_email": "${google_service_account.scheduler.email}",
                                         "audience": uri}]
        assert job["attempt_deadline"] == '${local.functions["landing_merger"].timeout_seconds}s'


class TestQueueIam:
    def test_each_push_account_may_invoke_its_own_worker_only(self, terraform):
        """One push account per source, run.invoker on that source's worker; Pub/Sub's agent mints its tokens."""
        resources = terraform["resource"]
        assert resources["google_service_account"]["pusher"]["for_each"] == "${toset(local.pushed_sources)}"
        assert resources["google_service_account"]["pusher"]["account_id"] == "sales-intel-push-${each.key}"
        assert all(len(f"sales-intel-push-{source}") <= 30 for source in queue_sources())  # account ids' limit
        invoker = resources["google_cloud_run_service_iam_member"]["pusher_invoker"]
        assert invoker["for_each"] == "${google_service_account.pusher}" and invoker["role"] == "roles/run.invoker"
        assert invoker["service"] == \
            '${google_cloudfunctions2_function.functions["${each.key}_worker"].service_config[0].service}'
        assert invoker["member"] == "serviceAccount:${each.value.email}"
        token = resources["google_service_account_iam_member"]["pusher_token_creator"]
        assert token["role"] == "roles/iam.serviceAccountTokenCreator" and token["member"] == "${local.pubsub_agent_member}"
        assert token["service_account_id"] == "${each.value.name}"

    def test_only_scheduler_and_push_accounts_invoke_and_the_scheduler_not_the_workers(self, terraform):
        """Every run.invoker grant goes to the scheduler account (all functions but the workers) or to a push
        account (its worker), or to allUsers on the two webhooks only (test_only_the_webhooks_are_public): none to
        anyone else, so no worker is reachable without a push account's token."""
        grants = terraform["resource"]["google_cloud_run_service_iam_member"]
        assert set(grants) == {"scheduler_invoker", "pusher_invoker", "drops_invoker",  # drops: file_drop's trigger
                               "webhook_public_invoker"}  # the webhooks: test_only_the_webhooks_are_public
        assert grants["drops_invoker"]["for_each"] == "${local.drop_functions}"
        scheduler = grants["scheduler_invoker"]
        assert scheduler["for_each"] == \
            '${{for name, fn in google_cloudfunctions2_function.functions : name => fn if !endswith(name, "_worker")}}'
        assert scheduler["member"] == "serviceAccount:${google_service_account.scheduler.email}"

    def test_the_runtime_publishes_and_pulls_what_queue_mode_needs(self, terraform):
        """The runtime account publishes to every work topic, landed-rows and work-dead-letter and subscribes to the
        two merger subscriptions; Pub/Sub's agent publishes to work-dead-letter and subscribes to the work
        subscriptions (to dead-letter); nothing project-wide."""
        resources = terraform["resource"]
        publisher = resources["google_pubsub_topic_iam_member"]["queue_publisher"]
        assert publisher["role"] == "roles/pubsub.publisher"
        grants = publisher["for_each"]
        assert ('for source, topic in google_pubsub_topic.work : "runtime_work_${source}" => {topic = topic.name, '
                "member = local.runtime_member}") in grants
        for topic, member in (("landed_rows", "runtime"), ("work_dead_letter", "runtime"),
                              ("work_dead_letter", "pubsub_agent")):
            assert f"= {{topic = google_pubsub_topic.{topic}.name, member = local.{member}_member}}" in grants
        subscriber = resources["google_pubsub_subscription_iam_member"]["queue_subscriber"]
        assert subscriber["role"] == "roles/pubsub.subscriber"
        grants = subscriber["for_each"]
        assert ("for source, subscription in google_pubsub_subscription.work : \"agent_work_${source}\" => "
                "{subscription = subscription.name, member = local.pubsub_agent_member}") in grants
        for name in ("landed_rows_merger", "work_dead_letter_merger"):
            assert f"{{subscription = google_pubsub_subscription.{name}.name, member = local.runtime_member}}" in grants
        project_roles = {r["role"] for r in resources["google_project_iam_member"].values()
                         if r["member"] in ("${local.runtime_member}", "${local.pubsub_agent_member}")}
        assert project_roles == {"roles/bigquery.jobUser"}


class TestQueueAlerts:
    def test_a_dead_lettered_work_message_alerts(self, terraform):
        """The log line the worker writes when it dead-letters is counted by a log-based metric and alerts, and so
        does Pub/Sub's own dead-lettering from the work subscriptions."""
        code = (ROOT / "http_entry" / "work_entry.py").read_text()
        assert 'log.error("work message dead-lettered"' in code
        metric = terraform["resource"]["google_logging_metric"]["dead_lettered_work"]
        assert 'jsonPayload.message="work message dead-lettered"' in metric["filter"]
        assert "severity>=ERROR" in metric["filter"] and 'resource.type="cloud_run_revision"' in metric["filter"]
        alerts = terraform["locals"]["count_alerts"]
        assert "${google_logging_metric.dead_lettered_work.name}" in alerts["dead_lettered_work"]["filter"]
        by_pubsub = alerts["work_dead_lettered_by_pubsub"]["filter"]
        assert "pubsub.googleapis.com/subscription/dead_letter_message_count" in by_pubsub
        assert 'starts_with(\\"${local.work_topic_prefix}\\")' in by_pubsub and 'ends_with(\\"-workers\\")' in by_pubsub

    def test_landed_rows_waiting_15_minutes_alert(self, terraform):
        """The landing subscription's oldest unacknowledged message over 900 s (the merger behind or down) alerts
        the channels."""
        policy = terraform["resource"]["google_monitoring_alert_policy"]["landing_backlog"]
        assert policy["notification_channels"] == "${var.notification_channels}"
        (condition,) = policy["conditions"][0]["condition_threshold"]
        assert "pubsub.googleapis.com/subscription/oldest_unacked_message_age" in condition["filter"]
        assert 'subscription_id=\\"${google_pubsub_subscription.landed_rows_merger.name}\\"' in condition["filter"]
        assert condition["comparison"] == "COMPARISON_GT" and condition["threshold_value"] == 15 * 60
class TestFileDrops:
    def test_the_drop_bucket_is_private_versioned_and_expires_its_files(self, terraform):
        """The drop bucket: uniform access, public access prevention, versioning, a delete lifecycle rule."""
        bucket = terraform["resource"]["google_storage_bucket"]["drops"]
        assert bucket["uniform_bucket_level_access"] is True and bucket["public_access_prevention"] == "enforced"
        assert bucket["versioning"][0]["enabled"] is True
        rules = bucket["lifecycle_rule"]
        assert rules[0]["condition"][0]["age"] == "${var.drop_retention_days}"
        assert {rule["action"][0]["type"] for rule in rules} == {"Delete"}

    def test_file_drop_is_triggered_by_object_finalize_with_retries(self, terraform):
        """Functions with trigger storage get an Eventarc finalize trigger on the drop bucket, retried, run as the
        drops account, which may only receive events and invoke them; the runtime account reads the bucket."""
        assert function_sizes()["file_drop"].trigger == "storage"
        resources = terraform["resource"]
        (trigger,) = [block for block in resources["google_cloudfunctions2_function"]["functions"]["dynamic"]
                      if "storage" in block["event_trigger"]["content"][0]["event_type"]]
        content = trigger["event_trigger"]["content"][0]
        assert content["event_type"] == "google.cloud.storage.object.v1.finalized"
        assert content["retry_policy"] == "RETRY_POLICY_RETRY"
        assert content["event_filters"][0] == {"attribute": "bucket", "value": "${google_storage_bucket.drops.name}"}
        assert content["service_account_email"] == "${google_service_account.drops.email}"
        drops_roles = {r["role"] for r in resources["google_project_iam_member"].values()
                       if "google_service_account.drops" in r["member"]}
        assert drops_roles == {"roles/eventarc.eventReceiver"}
        assert resources["google_cloud_run_service_iam_member"]["drops_invoker"]["role"] == "roles/run.invoker"
        reader = resources["google_storage_bucket_iam_member"]["runtime_reads_drops"]
        assert (reader["role"], reader["member"]) == ("roles/storage.objectViewer", "${local.runtime_member}")
