"""Cloud Scheduler, locally: fire the jobs of config/schedules.yaml when their crons say so."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Callable
from zoneinfo import ZoneInfo

from config.schedules import SCHEDULES, Job, load_jobs

_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))  # minute hour day-of-month month day-of-week


def _field_values(field: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in field.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            start, end = (int(x) for x in part.split("-", 1))
        else:
            start = end = int(part)
        if not (low <= start <= high and low <= end <= high) or step < 1:
            raise ValueError(f"cron field {field!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def cron_matches(expression: str, moment: datetime) -> bool:
    """True when the five-field cron expression fires at this minute (Sunday is 0 or 7)."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"cron expression needs five fields: {expression!r}")
    fields[4] = fields[4].replace("7", "0")
    minute, hour, day, month, weekday = (_field_values(f, *r) for f, r in zip(fields, _RANGES))
    day_matches = moment.day in day
    weekday_matches = (moment.isoweekday() % 7) in weekday
    # As in cron: when both day fields are restricted, either one matching is enough.
    if fields[2] != "*" and fields[4] != "*":
        day_ok = day_matches or weekday_matches
    else:
        day_ok = day_matches and weekday_matches
    return moment.minute in minute and moment.hour in hour and moment.month in month and day_ok


def due_jobs(jobs: list[Job], moment: datetime) -> list[Job]:
    return [job for job in jobs if cron_matches(job.schedule, moment)]


def run_schedule(fire: Callable[[Job], None], minutes: int | None,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
    """Fires due jobs at the start of each minute, for `minutes` minutes (None: until interrupted)."""
    zone_name, jobs = load_jobs()
    zone = ZoneInfo(zone_name)
    print(f"schedule: {len(jobs)} jobs from {SCHEDULES.name}, time zone {zone_name}", flush=True)
    for job in jobs:
        print(f"  {job.name:<28} {job.schedule:<14} -> {job.function}", flush=True)
    deadline = now() + timedelta(minutes=minutes) if minutes is not None else None
    while deadline is None or now() < deadline:
        moment = now().astimezone(zone).replace(second=0, microsecond=0)
        for job in due_jobs(jobs, moment):
            fire(job)
        time.sleep(max(0.0, 60 - now().second))
