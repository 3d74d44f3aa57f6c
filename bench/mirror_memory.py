"""The resolution mirror's memory at the pilot's CRM size: 200,000 contacts + 100,000 leads (+ accounts).

Writes a DuckDB warehouse with the CRM side (generated, realistic widths: names, titles, emails, phones), then in a
child process builds a ResolutionMirror over it, refreshes it and resolves a push's rows, printing the rows held,
the process's resident memory (before, after the refresh, peak), DuckDB's own memory and the seconds taken.

    .venv/bin/python bench/mirror_memory.py [--contacts 200000] [--leads 100000] [--accounts 20000]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def current_mb() -> float:
    """This process's resident memory now (VmRSS) in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def person(kind: str, i: int, accounts: int) -> dict[str, object]:
    domain = f"company{i % accounts}.example"
    return {"id": f"{kind}{i:015d}", "first_name": f"First{i}", "last_name": f"Lastname{i}", "title": "Account Executive",
            "email": f"first{i}.last{i}@{domain}", "email_raw": f"First{i}.Last{i}@{domain}", "domain": domain,
            "phone": f"(415) 555-{i % 10000:04d}", "phone_e164": f"+1415{i:07d}"[:12], "phone_country_code": "+1",
            "mobile_phone": None, "mobile_phone_e164": None, "owner_id": "005OWNER", "lead_source": "Web",
            "is_deleted": False, "created_date": T0, "last_modified_date": T0, "system_modstamp": T0}


def build(path: Path, contacts: int, leads: int, accounts: int) -> None:
    from warehouse import DuckDBWarehouse

    warehouse = DuckDBWarehouse(path)
    warehouse.ensure_schema()
    warehouse.merge("sf_accounts", [{"id": f"001{i:015d}", "name": f"Company {i}", "domain": f"company{i}.example",
                                     "website": f"https://company{i}.example", "phone_e164": f"+1212{i:07d}"[:12],
                                     "is_deleted": False, "system_modstamp": T0} for i in range(accounts)])
    for kind, count, table in (("003", contacts, "sf_contacts"), ("00Q", leads, "sf_leads")):
        for start in range(0, count, 50_000):
            rows = [person(kind, i, accounts) for i in range(start, min(count, start + 50_000))]
            if kind == "003":
                for row in rows:
                    row["account_id"] = f"001{int(str(row['id'])[3:]) % accounts:015d}"
            else:
                for row in rows:
                    row["company"] = f"Company {row['id']}"
            warehouse.merge(table, rows)
    warehouse.close()


def measure(path: Path) -> dict[str, object]:
    """In this (child) process: the mirror built, refreshed and asked once."""
    from bench.measure import peak_mb
    from config.settings import Settings
    from entity_resolution.mirror import ResolutionMirror
    from warehouse import DuckDBWarehouse

    before = current_mb()
    source = DuckDBWarehouse(path)
    settings = Settings(_env_file=None, internal_domains=["ourcompany.example"])
    started = time.perf_counter()
    mirror = ResolutionMirror(source, settings)
    read = mirror.refresh()
    refresh_seconds = time.perf_counter() - started
    after_refresh = current_mb()
    rows = [{"mailbox": "a@ourcompany.example", "message_id": f"m{i}", "role": "to", "sent_at": T0,
             "email": f"first{i}.last{i}@company{i}.example", "domain": f"company{i}.example"} for i in range(50)]
    started = time.perf_counter()
    answered = mirror.resolve({"gmail_participants": rows})["gmail_participants"]
    resolve_seconds = time.perf_counter() - started
    found = mirror.warehouse._con.execute("SELECT SUM(memory_usage_bytes) FROM duckdb_memory()").fetchone()
    duckdb_bytes = found[0] if found else 0
    return {"rows_read": read, "crm_rows": sum(read.values()), "rss_mb_before": round(before, 1),
            "rss_mb_after_refresh": round(after_refresh, 1), "rss_mb_after_resolve": round(current_mb(), 1),
            "peak_mb": round(peak_mb(), 1), "duckdb_mb": round((duckdb_bytes or 0) / 2**20, 1),
            "refresh_seconds": round(refresh_seconds, 1), "resolve_seconds_50_rows": round(resolve_seconds, 2),
            "linked": sum(1 for r in answered if r["sf_contact_id"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=200_000)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "crm.duckdb"
        build(path, args.contacts, args.leads, args.accounts)
        # A fresh process: the generated rows' memory is not counted.
        out = subprocess.run([sys.executable, __file__, "--child", str(path)], check=True, capture_output=True,
                             text=True).stdout
        print(json.dumps(json.loads(out.strip().splitlines()[-1]), indent=2))


if __name__ == "__main__":
    main()
