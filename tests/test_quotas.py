"""config/quotas.py: each worker's max_instances from the quotas it shares, and config/functions.yaml agreeing."""
from __future__ import annotations

import pytest

from cloud_functions.hubspot_sync.sync import HubSpotSyncRequest, requested_streams
from cloud_functions.salesforce_sync.records import OBJECTS
from config import quotas
from config.functions import function_sizes
from config.settings import Settings


def test_functions_yaml_gives_each_worker_and_the_merger_the_derived_max_instances():
    """Every queue-mode function's max_instances in functions.yaml is config/quotas.py's; the sync functions, which
    only enqueue in queue mode, and the rest keep 1."""
    sizes = function_sizes()
    assert {name: sizes[name].max_instances for name in quotas.MAX_INSTANCES} == quotas.MAX_INSTANCES
    others = {name: size.max_instances for name, size in sizes.items() if name not in quotas.MAX_INSTANCES}
    assert set(others) >= {"gmail_sync", "salesforce_sync", "dialpad_sync", "hubspot_sync"}
    assert {others[name] for name in others if name.endswith(("_sync", "_worker"))} == {1}
    assert {n for n in quotas.MAX_INSTANCES if n.endswith("_worker")} <= {name for name in sizes if name.endswith("_worker")}


def test_gmail_workers_at_full_speed_fit_the_project_quota():
    """200 mailboxes at the per-mailbox default (6,000 units/min) spend exactly the project's 1,200,000 a minute."""
    assert quotas.GMAIL_MAILBOX_UNITS_PER_MINUTE == Settings().gmail_quota_units_per_minute == 6000
    assert quotas.GMAIL_WORKERS == 200
    assert quotas.GMAIL_WORKERS * quotas.GMAIL_MAILBOX_UNITS_PER_MINUTE <= quotas.GMAIL_PROJECT_UNITS_PER_MINUTE


def test_salesforce_workers_leave_the_org_long_running_requests_to_spare():
    """One long-running request per worker at most: the pipeline's share stays under the org's 25, and there are
    never more workers than synced objects."""
    assert quotas.SALESFORCE_STREAMS == len(OBJECTS)
    assert quotas.SALESFORCE_WORKERS <= quotas.SALESFORCE_LONG_RUNNING_SHARE < quotas.SALESFORCE_ORG_LONG_RUNNING_REQUESTS
    assert quotas.SALESFORCE_WORKERS == min(quotas.SALESFORCE_LONG_RUNNING_SHARE, len(OBJECTS))


def test_hubspot_has_one_worker_per_stream_and_dialpad_and_the_merger_one():
    """HubSpot's workers are its streams (sequences, enrollments); Dialpad's one rate and the merger allow one."""
    assert list(quotas.HUBSPOT_STREAMS) == requested_streams(HubSpotSyncRequest(), None)  # type: ignore[arg-type]
    assert quotas.HUBSPOT_WORKERS == 2
    assert quotas.DIALPAD_WORKERS == quotas.MERGER_INSTANCES == 1


@pytest.mark.parametrize("dispatch, share", [("inline", 1), ("queue", 2)])
def test_a_hubspot_client_spends_its_share_of_the_private_app_limits(dispatch, share):
    """Inline one instance spends the whole private-app and search limits; in queue mode each of the two workers
    half of them, so together they never exceed them."""
    settings = Settings(dispatch=dispatch, hubspot_requests_per_10s=190, hubspot_search_per_second=5)
    requests_per_10s, search_per_second = quotas.hubspot_client_limits(settings)
    assert (requests_per_10s, search_per_second) == (190 / share, 5 / share)
    workers = quotas.HUBSPOT_WORKERS if dispatch == "queue" else 1
    assert requests_per_10s * workers <= 190 and search_per_second * workers <= 5
