"""Structured logs (with secret redaction) and the error publisher (Pub/Sub or the log)."""
