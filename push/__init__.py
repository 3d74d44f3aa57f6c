"""Push freshness: what the sources push (Gmail notifications, HubSpot and Dialpad webhooks, the Salesforce probe)
turned into work messages on the work queue (pipeline/work_queue.py)."""
