"""The HubSpot sandbox's variety comes from its seed: the same seed, the same portal; another seed, another one."""
from __future__ import annotations

from sandbox.company import CompanySize, FakeCompany
from sandbox.hubspot import NOT_ENROLLED_FORMS, HubSpotState


def portal(seed: int) -> HubSpotState:
    return HubSpotState(FakeCompany(42, CompanySize(accounts=5, contacts=200, leads=10)), 60, seed=seed)


def picture(state: HubSpotState) -> tuple:
    order = [c["id"] for c in sorted(state.contacts, key=lambda c: c["modified"])]
    return state.owners, order, sorted(state.enrollments), sorted(state.not_enrolled.items())


class TestSeededVariety:
    def test_the_same_seed_serves_the_same_portal(self):
        """Owners, modification order, enrollments and not-enrolled answers are the seed's alone."""
        assert picture(portal(5)) == picture(portal(5))

    def test_another_seed_varies_order_and_answers_not_owners(self):
        """Another seed reorders modifications and re-deals the not-enrolled forms; owners stay the same."""
        one, other = picture(portal(5)), picture(portal(6))
        assert one[0] == other[0] and one[1] != other[1] and one[3] != other[3]

    def test_the_portal_holds_every_documented_or_plausible_form(self):
        """People and queues (a queue with a userId and one without), every not-enrolled form, ids out of
        modification order."""
        state = portal(5)
        queues = [o for o in state.owners if o["type"] == "QUEUE"]
        assert {o["type"] for o in state.owners} == {"PERSON", "QUEUE"}
        assert {"userId" in q for q in queues} == {True, False}
        assert set(state.not_enrolled.values()) == set(NOT_ENROLLED_FORMS)
        assert picture(state)[1] != sorted(picture(state)[1], key=int)
