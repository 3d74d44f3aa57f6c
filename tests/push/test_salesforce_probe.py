"""The Salesforce probe against the sandbox: only the objects changed since the last probe get work."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cloud_functions.salesforce_sync.sync import client_for
from pipeline.work_queue import WorkQueue
from push.salesforce_probe import PROBED, ProbeRequest, probe_once, probe_salesforce
from sandbox.salesforce import SalesforceSandbox
from tests.helpers import point_at

pytestmark = pytest.mark.emulator


@pytest.fixture
def probed(work_topics, runtime, monkeypatch):
    settings, topics = work_topics
    with SalesforceSandbox() as sandbox:
        point_at(runtime, sandbox, monkeypatch, work_topic_prefix=settings.work_topic_prefix)
        yield sandbox, topics


class TestProbe:
    def test_only_changed_objects_get_work(self, probed, runtime):
        """A contact and an opportunity edited: work for Contact, Opportunity and its two history objects, one
        request per probed object and nothing else; a probe after them finds nothing."""
        sandbox, topics = probed
        client, queue = client_for(runtime), WorkQueue(runtime.settings)
        since = datetime.now(timezone.utc) - timedelta(seconds=1)
        assert probe_once(client, queue, since) == []
        sandbox.state.edit("Contact", 3, Title="VP Probing")
        sandbox.state.edit("Opportunity", 2, StageName="Closed Won")
        calls_before = client.api_calls
        published = probe_once(client, queue, since)
        assert published == ["Contact", "Opportunity", "OpportunityHistory", "OpportunityFieldHistory"]
        assert client.api_calls - calls_before == len(PROBED)
        messages = topics.pull("salesforce", 4)
        assert sorted((m.stream, m.reason) for m in messages) == sorted((name, "push") for name in published)
        assert probe_once(client, queue, datetime.now(timezone.utc) + timedelta(seconds=2)) == []

    def test_entry_point_probes_once_on_request(self, probed, runtime):
        """salesforce_probe with once answers the objects it published work for."""
        sandbox, _topics = probed
        sandbox.state.edit("Lead", 1, Company="Probe Inc")
        answer = probe_salesforce(ProbeRequest(once=True), runtime)
        assert answer["status"] == "success" and answer["published"] == [["Lead"]]
