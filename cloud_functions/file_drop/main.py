"""CloudEvent entry point: an object finalized in the drop bucket (Eventarc, google.cloud.storage.object.v1.finalized)."""
from __future__ import annotations

import functions_framework

from cloud_functions.file_drop.sync import DropNotFinished, run_file_drop
from http_entry.event_entry import handle_event


@functions_framework.cloud_event
def file_drop(cloud_event):
    """Imports the dropped object; raises (so Eventarc retries) while its import is not finished or failed."""
    handle_event(cloud_event, run_file_drop, source="file_drop", not_finished=DropNotFinished)
