"""A large CRM export dropped as a file: time and peak memory of its import into DuckDB.

    .venv/bin/python bench/file_drop_import.py               # a 300 MB HubSpot deals export
    .venv/bin/python bench/file_drop_import.py --mb 30 --encoding utf-16 --delimiter tab

Writes the export (HubSpot's headers, quoted fields, some across lines) into a temporary folder, then imports it
in a child process through the file drop's code (cloud_functions/file_drop: detection, streamed reading, the
runner's MERGEs, resumable watermark) exactly as `run_local import FILE` does, and prints the child's own peak
resident memory, rows and rows/s. The import is streamed: its memory should not grow with the file.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import RuntimePackagesOnly, peak_mb

HEADER = ["Record ID", "Deal Name", "Deal Stage", "Pipeline", "Amount", "Close Date", "Deal owner", "Company Name",
          "Associated Contact", "Contact Email", "Phone Number", "Create Date", "Deal Description"]
STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "contractsent", "closedwon", "closedlost")


def write_export(path: Path, megabytes: int, encoding: str, delimiter: str) -> int:
    """Writes about `megabytes` MB of deals; returns the rows written."""
    target = megabytes * 1_000_000
    rows = 0
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\r\n")
        writer.writerow(HEADER)
        while handle.tell() < target:
            buffer = io.StringIO()
            block = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
            for i in range(rows, rows + 10_000):
                company = f"Company {i % 5000} Inc."
                note = f"Renewal for {company}, seats {i % 90}" + ("\nsecond line, \"quoted\"" if i % 50 == 0 else "")
                block.writerow([str(10_000_000 + i), f"Deal {i}", STAGES[i % 6], "default", f"{(i % 9973) * 12.5:,.2f}",
                                f"{1 + i % 12:02d}/{1 + i % 28:02d}/2027", f"Owner {i % 40}", company,
                                f"Person {i % 50000}", f"person{i % 50000}@company{i % 5000}.example",
                                f"+1 415 555 {i % 10000:04d}", "01/05/2026", note])
            handle.write(buffer.getvalue())
            rows += 10_000
    return rows


def child(path: str, db: str) -> None:
    sys.meta_path.insert(0, RuntimePackagesOnly())
    from config.settings import Settings
    from pipeline.runtime import Runtime
    from scripts.drop_import import import_file

    settings = Settings(_env_file=None, duckdb_path=Path(db), errors_file=Path(db).with_suffix(".errors"))
    runtime = Runtime.from_settings(settings)
    started = time.perf_counter()
    summary = import_file(Path(path), runtime)
    seconds = time.perf_counter() - started
    (count,) = runtime.warehouse.query(f"SELECT COUNT(*) AS n FROM {settings.dataset}.crm_deals")
    print(json.dumps({"status": summary["drop_status"], "crm": summary["details"]["crm"], "deals": count["n"],
                      "rejected": summary["rows_rejected"], "seconds": round(seconds, 1),
                      "deals_per_second": round(count["n"] / seconds), "peak_mb": round(peak_mb())}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=300, help="size of the export in MB")
    parser.add_argument("--encoding", default="utf-8")
    parser.add_argument("--delimiter", choices=["comma", "semicolon", "tab"], default="comma")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="bench-drop-") as folder:
        path = Path(folder) / "acquired-hubspot" / "deals.csv"
        path.parent.mkdir()
        rows = write_export(path, args.mb, args.encoding, {"comma": ",", "semicolon": ";", "tab": "\t"}[args.delimiter])
        print(f"export: {path.stat().st_size / 1e6:,.0f} MB, {rows:,} deals ({args.encoding}, {args.delimiter})",
              flush=True)
        result = subprocess.run([sys.executable, __file__, "--child", str(path), str(Path(folder) / "wh.duckdb")],
                                cwd=ROOT, capture_output=True, text=True)
        if result.returncode:
            raise SystemExit(result.stderr)
        print(result.stdout.strip())


if __name__ == "__main__":
    main()
