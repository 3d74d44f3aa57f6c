"""The fake company's video meetings, one plan for every meeting sandbox (Zoom, Google Meet) to serve in its own
wire shapes: who hosted, who was invited and who joined, whether it was recorded and how far its transcript is.

From a seed, with the variety the meeting APIs document: guests without an email (joined unsigned-in), people who
dialled in by phone (no email, their number as name), people who dropped and rejoined, invitees who never joined,
meetings without a recording, recordings whose transcript is still processing (or was never made).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.company import FakeCompany

SAID = ("Thanks for making the time today.", "We reviewed the proposal with the team.",
        "What does the rollout look like?", "We can start with two regions.", "Can you send the pricing?",
        "I'll follow up by email with the details.", "Great, let's meet again next week.")


@dataclass
class Guest:
    name: str
    email: str | None = None
    phone: str | None = None  # dialled in: no email, the number is the name
    joined: bool = True
    rejoined: bool = False


@dataclass
class PlannedMeeting:
    index: int
    host: str  # our employee's address
    started: datetime
    minutes: int
    guests: list[Guest] = field(default_factory=list)
    recorded: bool = False
    transcript: str = "none"  # none, processing or completed
    title: str | None = None  # set to change what the meeting is called (its Zoom topic, its Calendar summary)

    @property
    def topic(self) -> str:
        return self.title or f"Sync with {self.guests[0].name}"

    @property
    def ended(self) -> datetime:
        return self.started + timedelta(minutes=self.minutes)

    def lines(self) -> list[tuple[int, str, str]]:
        """What was said: (seconds from the start, speaker, text), in time order."""
        speakers = [self.host.split("@")[0].title()] + [g.name for g in self.guests if g.joined]
        return [(15 * n, speakers[n % len(speakers)], text) for n, text in enumerate(SAID[: 3 + self.index % 4])]


def plan_meetings(company: FakeCompany, hosts: list[str], count: int, end: datetime, spacing: timedelta,
                  seed: int = 11) -> list[PlannedMeeting]:
    """`count` meetings, the last ending before `end`, each `spacing` after the one before."""
    return [plan_meeting(company, hosts, index, end - (count - index) * spacing, seed) for index in range(count)]


def plan_meeting(company: FakeCompany, hosts: list[str], index: int, started: datetime, seed: int = 11) -> PlannedMeeting:
    """Meeting number `index` of the plan, starting at `started`."""
    rng = random.Random(f"{seed} meeting {index}")
    meeting = PlannedMeeting(index, hosts[index % len(hosts)], started.replace(microsecond=0), rng.choice((15, 30, 45, 60)))
    contacts = max(1, company.size.contacts)
    for n in range(rng.randint(1, 3)):
        person: dict[str, Any] = company.contact((index * 7 + n) % contacts)
        name = f"{person['FirstName']} {person['LastName']}"
        roll = rng.random()
        if roll < 0.1:
            meeting.guests.append(Guest(person["true_phone_e164"], phone=person["true_phone_e164"]))
        elif roll < 0.18:
            meeting.guests.append(Guest(name))  # joined without signing in: Zoom has no email for them
        else:
            meeting.guests.append(Guest(name, person["true_email"], joined=rng.random() > 0.1,
                                        rejoined=rng.random() < 0.15))
    meeting.recorded = rng.random() < 0.7
    if meeting.recorded:
        meeting.transcript = rng.choices(("completed", "processing", "none"), (0.75, 0.15, 0.1))[0]
    return meeting
