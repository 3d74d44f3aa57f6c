"""Dialpad sync throughput: this pipeline vs a sequential baseline, same sandbox, same limits.

    .venv/bin/python bench/dialpad_sync.py                 # 5,000 calls, half with transcripts, 30 ms latency
    .venv/bin/python bench/dialpad_sync.py --calls 1000

Both read the same loopback Dialpad (company limit 20 requests/s, enforced with 429s) into DuckDB.
The pipeline fetches a page's transcripts concurrently under its rate limiter; the baseline does
the same requests one after another (same limiter). Prints calls/s, requests and 429s of each.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run(variant: str, calls: int, latency: float, workdir: Path) -> dict:
    import os

    from cloud_functions.dialpad_sync.client import DialpadClient
    from cloud_functions.dialpad_sync.sync import DialpadSyncRequest, run_dialpad_sync
    from config.settings import Settings
    from pipeline.runtime import Runtime
    from sandbox.dialpad import DialpadSandbox
    from sandbox.server import Faults
    from warehouse import DuckDBWarehouse

    with DialpadSandbox(calls, spacing_seconds=60, faults=Faults(latency_seconds=latency)) as sandbox:
        os.environ["DIALPAD_API_KEY"] = sandbox.state.api_key
        settings = Settings(_env_file=None, dialpad_base_url=sandbox.url, errors_file=workdir / f"{variant}.errors",
                            dialpad_transcript_concurrency=8 if variant == "pipeline" else 1)
        warehouse = DuckDBWarehouse(workdir / f"{variant}.duckdb")
        warehouse.ensure_schema()
        runtime = Runtime.around(settings, warehouse)
        client = DialpadClient(sandbox.state.api_key, settings)
        started = time.perf_counter()
        result = run_dialpad_sync(DialpadSyncRequest(sync_type="full", days=10), runtime, client)
        seconds = time.perf_counter() - started
        stored = warehouse.table_counts()["dialpad_calls"]
        warehouse.close()
        return {"variant": variant, "calls": stored, "seconds": seconds, "calls_per_s": stored / seconds,
                "requests": sandbox.server.requests.total, "rate_limited": sandbox.state.rate_limited,
                "busiest_second": sandbox.server.requests.max_in_window(1.0),
                "transcripts": result["runs"][0]["details"]["transcripts_fetched"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.03)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        results = [run(variant, args.calls, args.latency, Path(workdir)) for variant in ("pipeline", "sequential")]
    print(f"Dialpad sync of {args.calls:,} calls (half with transcripts), {args.latency * 1000:.0f} ms latency, "
          f"company limit 20 requests/s")
    for r in results:
        print(f"  {r['variant']:<10} {r['calls']:>6,} calls {r['transcripts']:>6,} transcripts {r['seconds']:>7.1f} s "
              f"{r['calls_per_s']:>7.1f} calls/s  requests {r['requests']:>6,}  busiest second {r['busiest_second']:>3}"
              f"  429s {r['rate_limited']}")
    print(f"  ratio: pipeline is {results[0]['calls_per_s'] / results[1]['calls_per_s']:.2f}x the sequential baseline")


if __name__ == "__main__":
    main()
