"""The sandbox's opportunities and how they moved: OpportunityHistory and OpportunityFieldHistory rows derived
from each opportunity's index, served in (CreatedDate, Id) order without being held.

Opportunity i is created at EPOCH + i * STEP_SECONDS and stands now in STAGES[i % 6]; PATHS[i % 6] is the
path that led there, each step some days after its creation, the last one equal to the opportunity as it is
(stage, amount, close date, probability). Salesforce writes an OpportunityHistory row (a snapshot) for each
step and, with field history tracking on StageName, Amount and CloseDate, an OpportunityFieldHistory row per
field a step changed (and one `created` row).

A step of a path happens to every opportunity of that residue, so the rows at a moment t (counted in
STEP_SECONDS from EPOCH) are those of the (step, opportunity) pairs with i = t - the step's offset. How many
rows lie before t is then a sum over the steps, and the row of a given rank is found by bisection on t (the
rows after it by walking on): the rows get an index in (CreatedDate, Id) order, as the sandbox's other objects do, which lets it serve
"WHERE CreatedDate >= t ORDER BY CreatedDate, Id" by bisection over a million opportunities.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Hashable, Iterator, Sequence, TypeVar

from sandbox.company import EPOCH, STEP_SECONDS, sf_id

STAGES = ("Prospecting", "Qualification", "Proposal", "Negotiation", "Closed Won", "Closed Lost")
PROBABILITY = {"Prospecting": 10.0, "Qualification": 20.0, "Proposal": 50.0, "Negotiation": 75.0,
               "Closed Won": 100.0, "Closed Lost": 0.0}
FORECAST_CATEGORY = {"Prospecting": "Pipeline", "Qualification": "Pipeline", "Proposal": "BestCase",
                     "Negotiation": "Forecast", "Closed Won": "Closed", "Closed Lost": "Omitted"}
DAY_STEPS = 86_400 // STEP_SECONDS
# An opportunity was last modified after its last step (its SystemModstamp: creation + this).
MODIFIED_AFTER = timedelta(days=40)
# OpportunityFieldHistory: the tracked fields and the DataType Salesforce reports for each.
TRACKED = {"StageName": "DynamicEnum", "Amount": "Currency", "CloseDate": "Date"}
# The part of a path's Step that sets each tracked field.
STEP_PARTS = {"StageName": "stage", "Amount": "amount_share", "CloseDate": "close_days_later"}


@dataclass(frozen=True)
class Step:
    """One change on an opportunity's path."""

    days: int  # after the opportunity's creation
    stage: str
    amount_share: float  # of the opportunity's Amount now
    close_days_later: int  # the close date then, in days after the one it has now (negative: before)


_OPENING = (Step(0, "Prospecting", 0.8, -14), Step(3, "Qualification", 0.8, -14))  # the close date slips later
_PROPOSAL = (*_OPENING, Step(10, "Proposal", 0.8, 0), Step(14, "Proposal", 1.0, 0))  # amount revised in Proposal
PATHS: dict[int, tuple[Step, ...]] = {
    0: (Step(0, "Prospecting", 1.0, 0),),
    1: (_OPENING[0], Step(3, "Qualification", 1.0, 0)),
    2: _PROPOSAL,
    3: (*_PROPOSAL, Step(24, "Negotiation", 1.0, 0)),
    4: (*_PROPOSAL, Step(24, "Negotiation", 1.0, 0), Step(38, "Closed Won", 1.0, 0)),
    5: (*_OPENING, Step(12, "Closed Lost", 1.0, 0)),
}


def opportunity_values(i: int) -> dict[str, Any]:
    """Opportunity i's stage, amount, close date, probability and forecast category as they are now."""
    stage = STAGES[i % 6]
    return {"StageName": stage, "Amount": float(1000 * (i % 97 + 1)),
            "CloseDate": (EPOCH + timedelta(days=30 + i % 365)).date(), "Probability": PROBABILITY[stage],
            "ForecastCategory": FORECAST_CATEGORY[stage]}


def step_values(i: int, step: Step) -> dict[str, Any]:
    """The values an OpportunityHistory row of opportunity i holds after a step."""
    now = opportunity_values(i)
    amount = round(now["Amount"] * step.amount_share, 2)
    return {"StageName": step.stage, "Amount": amount, "CloseDate": now["CloseDate"] + timedelta(days=step.close_days_later),
            "Probability": PROBABILITY[step.stage], "ForecastCategory": FORECAST_CATEGORY[step.stage]}


def _residue_count(end: int, residue: int) -> int:
    """How many i in [0, end) have i % 6 == residue."""
    return max(0, (end - residue + 5) // 6)


# What a row of PeriodicRows is: (residue, step) for OpportunityHistory, (residue, step, field) for its field
# history.
Event = TypeVar("Event", bound=Hashable)


class PeriodicRows(Generic[Event]):
    """Rows every opportunity of a residue has at a fixed offset after its creation, ranked by (moment, event).

    events: (offset in STEP_SECONDS, residue of i % 6, what the row is), in the order rows of one moment take.
    """

    def __init__(self, opportunities: int, events: Sequence[tuple[int, int, Event]]):
        self.opportunities = opportunities
        self.events = list(events)
        self.count = sum(_residue_count(opportunities, residue) for _, residue, _ in self.events)
        self._last_moment = opportunities + max((offset for offset, _, _ in self.events), default=0)

    def before(self, moment: int) -> int:
        """How many rows lie before a moment."""
        return sum(_residue_count(min(self.opportunities, moment - offset), residue)
                   for offset, residue, _ in self.events)

    def _firing(self, moment: int) -> list[tuple[int, Event]]:
        return [(moment - offset, event) for offset, residue, event in self.events
                if 0 <= moment - offset < self.opportunities and (moment - offset) % 6 == residue]

    def iterate(self, start: int) -> Iterator[tuple[int, int, int, Event]]:
        """(rank, opportunity index, moment, event) of every row from a rank on, in order."""
        if start >= self.count:
            return
        moment = bisect.bisect_right(range(self._last_moment + 1), start, key=self.before) - 1
        rank = self.before(moment)
        while rank < self.count:
            for opportunity, event in self._firing(moment):
                if rank >= start:
                    yield rank, opportunity, moment, event
                rank += 1
            moment += 1

    def indexes_of(self, opportunity: int) -> list[int]:
        """The ranks of an opportunity's rows."""
        found = []
        for offset, residue, event in self.events:
            if opportunity % 6 == residue and opportunity < self.opportunities:
                moment = opportunity + offset
                found.append(self.before(moment) + self._firing(moment).index((opportunity, event)))
        return found


def moment_time(moment: int) -> datetime:
    return EPOCH + timedelta(seconds=moment * STEP_SECONDS)


def history_events() -> list[tuple[int, int, tuple[int, int]]]:
    """OpportunityHistory: one row per step of each path."""
    return [(step.days * DAY_STEPS, residue, (residue, j)) for residue, path in PATHS.items()
            for j, step in enumerate(path)]


def field_history_events() -> list[tuple[int, int, tuple[int, int, str]]]:
    """OpportunityFieldHistory: a `created` row, then one per tracked field a step changed."""
    events: list[tuple[int, int, tuple[int, int, str]]] = []
    for residue, path in PATHS.items():
        events.append((0, residue, (residue, 0, "created")))
        for j in range(1, len(path)):
            events += [(path[j].days * DAY_STEPS, residue, (residue, j, name)) for name, part in STEP_PARTS.items()
                       if getattr(path[j - 1], part) != getattr(path[j], part)]
    return events


def history_row(opportunity: dict[str, Any], index: int, when: datetime, values: dict[str, Any]) -> dict[str, Any]:
    """An OpportunityHistory row: the opportunity's tracked values from `when` on."""
    amount, probability = values["Amount"], values["Probability"]
    expected = None if amount is None or probability is None else round(amount * probability / 100, 2)
    return {"Id": sf_id("008", index), "OpportunityId": opportunity["Id"], "StageName": values["StageName"],
            "Amount": amount, "ExpectedRevenue": expected, "CloseDate": values["CloseDate"], "Probability": probability,
            "ForecastCategory": values["ForecastCategory"], "CreatedById": opportunity["OwnerId"], "CreatedDate": when,
            "SystemModstamp": when, "IsDeleted": bool(opportunity.get("IsDeleted"))}


def field_history_row(opportunity: dict[str, Any], index: int, when: datetime, field: str, old: Any,
                      new: Any) -> dict[str, Any]:
    """An OpportunityFieldHistory row (field `created`: the opportunity was created, no values)."""
    return {"Id": sf_id("017", index), "OpportunityId": opportunity["Id"], "Field": field,
            "DataType": TRACKED.get(field, "Text"), "OldValue": old, "NewValue": new,
            "CreatedById": opportunity["OwnerId"], "CreatedDate": when, "IsDeleted": bool(opportunity.get("IsDeleted"))}


def changed_fields(before: dict[str, Any] | None, after: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, old, new) of each tracked field that differs; [("created", None, None)] for a new opportunity."""
    if before is None:
        return [("created", None, None)]
    return [(name, before.get(name), after.get(name)) for name in TRACKED if before.get(name) != after.get(name)]


def is_tracked_change(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether an edit makes Salesforce write an OpportunityHistory row (stage, amount, close date, probability)."""
    return any(before.get(f) != after.get(f) for f in (*TRACKED, "Probability"))

