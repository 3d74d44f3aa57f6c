"""A drop folder of CRM exports about the fake company (sandbox.company), as other systems would export them.

`acquired-hubspot/deals.csv`: an acquired company's HubSpot (comma, UTF-8, US amounts and dates), whose deal
contacts are the Salesforce sandbox's contacts by email, and some of whose deals are the Salesforce sandbox's
opportunities again (same account, same name, close date a week apart): look-alikes to review.
`subsidiary-zoho/deals.csv`: a subsidiary's Zoho (semicolon, Windows-1252, `1.234,56 €`, day-first dates),
whose contacts are reached by phone only, and a third of whose accounts are found by name only (a suggestion for
review: the export names another account than its contact's).
`partner/pipeline.csv`: a partner's spreadsheet no CRM wrote (generic), with one row that is not a deal.

    python -m sandbox.file_drops DIR   (writes the folder; `run_local import DIR/*/*.csv` loads it)
"""
from __future__ import annotations

import argparse
import csv
import io
from datetime import timedelta
from pathlib import Path

from sandbox.company import CompanySize, FakeCompany
from sandbox.opportunity_history import opportunity_values

HUBSPOT_STAGES = ("appointmentscheduled", "presentationscheduled", "contractsent", "closedwon")


def _csv(rows: list[list[str]], delimiter: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def _hubspot(company: FakeCompany, deals: int) -> str:
    rows = [["Record ID", "Deal Name", "Deal Stage", "Pipeline", "Amount", "Close Date", "Deal owner",
             "Company Name", "Associated Contact", "Contact Email", "Create Date"]]
    for i in range(deals):
        contact = company.contact(i * 7 % company.size.contacts)
        account = company.account(contact["account_index"])
        if i % 3 == 0:  # the Salesforce opportunity of this account again: a look-alike to review
            opportunity = contact["account_index"] * 2
            name, close = f"Deal {opportunity}", opportunity_values(opportunity)["CloseDate"] + timedelta(days=7)
        else:
            name, close = f"{account['Name']} expansion {i}", opportunity_values(i)["CloseDate"]
        rows.append([str(9_100_000 + i), name, HUBSPOT_STAGES[i % 4], "default", f"{1500 * (i + 1):,.2f}",
                     close.strftime("%m/%d/%Y"), "Morgan Hale", account["Name"],
                     f"{contact['FirstName']} {contact['LastName']}", contact["true_email"], "01/05/2026"])
    return _csv(rows, ",")


def _zoho(company: FakeCompany, deals: int) -> str:
    rows = [["Record Id", "Deal Name", "Account Name", "Stage", "Amount", "Closing Date", "Deal Owner",
             "Probability (%)", "Contact Name", "Phone", "Lead Source"]]
    for i in range(deals):
        contact = company.contact(i * 11 % company.size.contacts + 1)
        # Every third deal names another account than its contact's: found by name only, a suggestion to review.
        account = company.account(contact["account_index"] + (1 if i % 3 == 0 else 0))
        close = opportunity_values(i + 40)["CloseDate"]
        amount = f"{2345.5 * (i + 1):,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".") + " €"
        rows.append([f"zcrm_{5_000_000 + i}", f"Rahmenvertrag {i}", f"{account['Name']} GmbH",
                     ("Qualification", "Negotiation/Review", "Closed Won")[i % 3], amount, close.strftime("%d/%m/%Y"),
                     "Jürgen Weiß", "60", f"{contact['FirstName']} {contact['LastName']}",
                     contact["true_phone_e164"], "Messe"])
    return _csv(rows, ";")


def _partner() -> str:
    rows = [["Opportunity", "Customer", "Value", "Status", "Expected close", "Notes"],
            ["Pilot rollout", "Initrode", "12000", "Proposal", "2026-11-30", "via reseller"],
            ["", "Initrode", "", "", "", "a note, not a deal"]]
    return _csv(rows, ",")


def write_sample_drops(folder: Path, company: FakeCompany | None = None) -> list[Path]:
    """Writes the three exports under folder (replacing them); returns their paths."""
    company = company or FakeCompany(42, CompanySize(accounts=50, contacts=2000, leads=500))  # the sandboxes' own
    files = {folder / "acquired-hubspot" / "deals.csv": _hubspot(company, 18).encode("utf-8"),
             folder / "subsidiary-zoho" / "deals.csv": _zoho(company, 9).encode("cp1252"),
             folder / "partner" / "pipeline.csv": _partner().encode("utf-8")}
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)
    return sorted(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    for path in write_sample_drops(parser.parse_args().folder):
        print(path)


if __name__ == "__main__":
    main()
