"""How late a landed row may reach its table in queue mode: what entity resolution and the merger's sweep allow for.

A run's rows and its etl_runs row are stamped by the worker and merged by the merger a cycle or more later; the
landing backlog alert (Terraform) fires when the oldest landed message is this old.
"""
from __future__ import annotations

from datetime import timedelta

LANDING_LAG = timedelta(minutes=15)
