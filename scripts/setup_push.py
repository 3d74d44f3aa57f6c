"""Registers what makes the sources push: Gmail's watches, Dialpad's call webhook; prints HubSpot's app settings.

    python -m scripts.setup_push gmail                      # users.watch for every mailbox (gmail_watch renews daily)
    python -m scripts.setup_push dialpad --hook-url URL     # POST /api/v2/webhooks + /api/v2/subscriptions/call
    python -m scripts.setup_push hubspot --hook-url URL     # what to enter on the HubSpot app's Webhooks page

The secrets come from the secret store like every other (`dialpad-webhook-secret`, `hubspot-app-secret`);
nothing secret is printed.
"""
from __future__ import annotations

import argparse
import json

from cloud_functions.dialpad_sync.sync import client_for as dialpad_client
from pipeline.runtime import get_runtime
from push.gmail_watch import renew_watches
from push.receivers import DIALPAD_SECRET, DIALPAD_STATES

HUBSPOT_STEPS = """HubSpot app (developer account > Apps > your app > Webhooks):
  Target URL: {url}   (also HUBSPOT_WEBHOOK_URL, exactly as entered: signature v3 covers it)
  Event throttling: 10 concurrent requests (the receiver answers in milliseconds)
  Subscriptions: contact.creation; contact.propertyChange on hs_sequences_is_enrolled and
    hs_latest_sequence_enrolled (there is no sequence or enrollment event: these properties are what an
    enrollment changes); add any other contact property whose change should refresh its enrollment
  The app's client secret goes into the secret hubspot-app-secret (docs/SETUP.md)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.setup_push", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", choices=["gmail", "dialpad", "hubspot"])
    parser.add_argument("--hook-url", help="the deployed webhook function's URL (dialpad, hubspot)")
    args = parser.parse_args(argv)
    if args.source == "hubspot":
        print(HUBSPOT_STEPS.format(url=args.hook_url or "<the hubspot_webhook function's URL>"))
        return 0
    runtime = get_runtime()
    if args.source == "gmail":
        answer = renew_watches(runtime, "local")
        print(json.dumps(answer, indent=2))
        return 0 if answer["status"] == "success" else 1
    if not args.hook_url:
        parser.error("dialpad needs --hook-url")
    subscription = dialpad_client(runtime).subscribe_calls(args.hook_url, runtime.secrets.get(DIALPAD_SECRET),
                                                           sorted(DIALPAD_STATES))
    print(json.dumps({"subscription": subscription["id"], "call_states": subscription["call_states"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
