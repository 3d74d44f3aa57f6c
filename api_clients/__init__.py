"""Plumbing every source's API client shares: retries, rate limits, metered calls, JSON over HTTP."""
