"""Queue mode on one machine: the work topics, K workers per source and the merger, over the Pub/Sub emulator.

The same code as deployed: each source's work topic and subscription (ordering on, dead-lettering after
WORK_MAX_ATTEMPTS), workers that run one stream per message with their rows landed (warehouse.landing), and
the one merger writing the warehouse (pipeline.merger). Deployed, Pub/Sub pushes each message to the source's
`<source>_worker` function; here a streaming pull of the same subscription hands it to the same `deliver`,
K at a time per source (the client holds a stream's next message until the one before is acknowledged, as
the ordering key asks). On DuckDB the workers are threads of this process and the merger is the file's one
writer; on a BigQuery emulator workers may also run in other processes (`worker_process`).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from config.settings import Settings
from config.sources import registered
from observability.logger import get_logger
from pipeline.merger import CycleResult, Merger, merger_subscription
from pipeline.runtime import Runtime
from pipeline.work_queue import WorkMessage, WorkQueue, subscription_path, topic_path, work_topic
from pipeline.worker import source_module
from scripts.emulators import free_port, pubsub_command, running
from warehouse.landing import LandingWarehouse

log = get_logger(__name__)
ACK_DEADLINE_SECONDS = 600  # Pub/Sub's most: a run (at most the function's 540 s) ends before its message is due again


def worker_subscription(settings: Settings, source: str) -> str:
    return subscription_path(settings, f"{settings.work_topic_prefix}{source}-workers")


def ensure_topology(settings: Settings, sources: Sequence[str], publisher: Any = None, subscriber: Any = None,
                    ack_deadline_seconds: int = ACK_DEADLINE_SECONDS) -> None:
    """Creates what is missing of the topics and subscriptions queue mode uses (what Terraform declares)."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    publisher = publisher or pubsub_v1.PublisherClient()
    subscriber = subscriber or pubsub_v1.SubscriberClient()
    dead = topic_path(settings, settings.work_dead_letter_topic)
    landing = topic_path(settings, settings.landing_topic)
    for topic in [dead, landing, *(work_topic(settings, s) for s in sources)]:
        with contextlib.suppress(AlreadyExists):
            publisher.create_topic(name=topic)
    subscriptions = [{"name": merger_subscription(settings, name), "topic": topic_path(settings, name),
                      "ack_deadline_seconds": ack_deadline_seconds}
                     for name in (settings.landing_topic, settings.work_dead_letter_topic)]
    subscriptions += [{"name": worker_subscription(settings, s), "topic": work_topic(settings, s),
                       "ack_deadline_seconds": ack_deadline_seconds, "enable_message_ordering": True,
                       "dead_letter_policy": {"dead_letter_topic": dead,
                                              "max_delivery_attempts": settings.work_max_attempts},
                       "retry_policy": {"minimum_backoff": {"seconds": 1}, "maximum_backoff": {"seconds": 10}}}
                      for s in sources]
    for request in subscriptions:
        with contextlib.suppress(AlreadyExists):
            subscriber.create_subscription(request=request)


@dataclass
class FanOutStats:
    """What the workers did: deliveries by outcome, and the merger's cycles."""

    delivered: int = 0
    done: int = 0
    retried: int = 0
    dead_lettered: int = 0
    continued: int = 0
    in_flight: int = 0
    open_streams: set[str] = field(default_factory=set)  # ordering keys enqueued whose work has not ended
    cycles: list[CycleResult] = field(default_factory=list)


class LocalFanOut:
    """Workers (threads, K per source) and the merger (a thread) over the emulator, until stopped."""

    def __init__(self, runtime: Runtime, sources: Sequence[str], workers: int = 4,
                 merger: Merger | None = None, merge: bool = True, ack_deadline_seconds: int = ACK_DEADLINE_SECONDS):
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        self.runtime, self.sources, self.workers = runtime, list(sources), workers
        settings = runtime.settings
        self.queue = WorkQueue(settings)
        self.worker_runtime = Runtime(settings, LandingWarehouse(runtime.warehouse, settings), runtime.publisher,
                                      runtime.secrets)
        self.merger = merger or Merger(runtime.warehouse, settings)
        self._merge = merge  # False: workers only (the merger runs elsewhere)
        self._lease = ack_deadline_seconds
        self.stats = FanOutStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._subscriber = pubsub_v1.SubscriberClient()
        self._pulls: list[Any] = []
        self._merger_thread = threading.Thread(target=self._merge_until_stopped, name="merger", daemon=True)
        ensure_topology(settings, self.sources, ack_deadline_seconds=ack_deadline_seconds)

    def __enter__(self) -> "LocalFanOut":
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]
        from google.cloud.pubsub_v1.subscriber.scheduler import ThreadScheduler

        for source in self.sources:
            scheduler = ThreadScheduler(ThreadPoolExecutor(self.workers, thread_name_prefix=f"{source}-worker"))
            self._pulls.append(self._subscriber.subscribe(
                worker_subscription(self.runtime.settings, source), self._callback(source),
                flow_control=pubsub_v1.types.FlowControl(
                    max_messages=self.workers, min_duration_per_lease_extension=min(self._lease, 600),
                    max_duration_per_lease_extension=min(self._lease, 600)), scheduler=scheduler))
        if self._merge:
            self._merger_thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for pull in self._pulls:
            pull.cancel()
            with contextlib.suppress(Exception):
                pull.result(timeout=30)
        if self._merger_thread.is_alive():
            self._merger_thread.join(timeout=120)
        self._subscriber.close()

    def enqueue(self, source: str, sync_type: str = "incremental", streams: Sequence[str] | None = None,
                reason: str = "manual") -> list[str]:
        """One work message per stream of source (all it has, or these), asked for for reason (manual, push,
        ...); returns the streams."""
        if streams is None:
            declaration = registered()[source]
            request = declaration.attribute(declaration.request)(sync_type=sync_type, trigger="local")
            streams = source_module(source).requested_streams(request, self.runtime)
        messages = [WorkMessage(source, stream, sync_type, reason) for stream in streams]
        with self._lock:
            self.stats.open_streams.update(m.ordering_key for m in messages)
        self.queue.publish(messages)
        return list(streams)

    def _callback(self, source: str) -> Callable[[Any], None]:
        from http_entry.work_entry import deliver

        def callback(message: Any) -> None:
            with self._lock:
                self.stats.delivered += 1
                self.stats.in_flight += 1
            answer: dict[str, Any] = {}
            try:
                body, status, _ = deliver(message.data, message.delivery_attempt or 1, message.message_id, source,
                                          self.worker_runtime)
                answer = json.loads(body)
            except Exception:  # deliver answers every error; this is a bug of its own: deliver again
                log.exception("worker callback failed")
                status = 500
            with self._lock:
                self.stats.in_flight -= 1
                if status != 200:
                    self.stats.retried += 1
                elif answer.get("status") == "dead_lettered":
                    self.stats.dead_lettered += 1
                elif answer.get("continued"):
                    self.stats.continued += 1
                else:
                    self.stats.done += 1
                if status == 200 and not answer.get("continued"):
                    self.stats.open_streams.discard(message.ordering_key)
            message.ack() if status == 200 else message.nack()
        return callback

    def _merge_until_stopped(self) -> None:
        while not self._stop.is_set():
            try:
                result = self.merger.cycle()
            except Exception:  # the next cycle retries what was not acknowledged
                log.exception("merger cycle failed")
                self._stop.wait(self.runtime.settings.merge_interval_seconds)
                continue
            with self._lock:
                self.stats.cycles.append(result)
            self._stop.wait(self.runtime.settings.merge_interval_seconds)

    def wait_until_done(self, timeout: float) -> bool:
        """Waits until every enqueued stream's work has ended (done, or dead-lettered); False at timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self.stats.open_streams and not self.stats.in_flight:
                    return True
            time.sleep(0.2)
        return False

    def drain(self) -> None:
        """Stops the merger's timer and merges what is left until a cycle finds nothing."""
        self._stop.set()
        if self._merger_thread.is_alive():
            self._merger_thread.join(timeout=600)
        while True:
            result = self.merger.cycle()
            self.stats.cycles.append(result)
            if not result.messages and not result.dead_letters:
                return


@contextlib.contextmanager
def pubsub_emulator(log_dir: Path | None = None) -> Iterator[str]:
    """PUBSUB_EMULATOR_HOST when set; otherwise a Pub/Sub emulator started (gcloud + Java) until the block ends."""
    existing = os.environ.get("PUBSUB_EMULATOR_HOST")
    if existing:
        yield existing
        return
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise RuntimeError("queue mode on one machine needs the Pub/Sub emulator: install the Google Cloud SDK "
                           "(gcloud), its pubsub-emulator component and Java, or set PUBSUB_EMULATOR_HOST")
    port = free_port()
    host = f"127.0.0.1:{port}"
    with running("Pub/Sub emulator", pubsub_command(gcloud, port), port, log_dir):
        os.environ["PUBSUB_EMULATOR_HOST"] = host
        try:
            yield host
        finally:
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)


def max_dml_in_window(statements: Sequence[tuple[str, float, float]], seconds: float = 10.0) -> dict[str, int]:
    """Per table, the most mutating statements that started within any `seconds` (BigQuery allows 25 per 10 s)."""
    starts: dict[str, list[float]] = {}
    for table, start, _end in statements:
        starts.setdefault(table, []).append(start)
    most: dict[str, int] = {}
    for table, times in starts.items():
        times.sort()
        first = 0
        for last, time_ in enumerate(times):
            while times[first] <= time_ - seconds:
                first += 1
            most[table] = max(most.get(table, 0), last - first + 1)
    return most


def max_in_flight(statements: Sequence[tuple[str, float, float]]) -> dict[str, int]:
    """Per table, the most mutating statements running at once (BigQuery runs 2 and queues 20)."""
    events: dict[str, list[tuple[float, int]]] = {}
    for table, start, end in statements:
        events.setdefault(table, []).extend([(start, 1), (end, -1)])
    most: dict[str, int] = {}
    for table, points in events.items():
        running = 0
        for _time, step in sorted(points, key=lambda p: (p[0], p[1])):
            running += step
            most[table] = max(most.get(table, 0), running)
    return most


def run_fan_out(runtime: Runtime, sources: Sequence[str], *, workers: int, full: bool, timeout: float) -> FanOutStats:
    """`run_local fan-out`: every stream of each source enqueued, run by the workers, merged; prints the outcome."""
    settings = runtime.settings.model_copy(update={"dispatch": "queue"})
    queued = Runtime(settings, runtime.warehouse, runtime.publisher, runtime.secrets)
    with LocalFanOut(queued, sources, workers=workers) as fan:
        for source in sources:
            streams = fan.enqueue(source, "full" if full else "incremental")
            print(f"{source}: {len(streams)} work message(s) queued ({', '.join(streams)})", flush=True)
        finished = fan.wait_until_done(timeout)
        fan.drain()
    stats = fan.stats
    statements = fan.merger.window.statements
    print(f"workers: {stats.done} stream(s) done, {stats.continued} continued, {stats.retried} retried, "
          f"{stats.dead_lettered} dead-lettered; merger: {sum(c.rows for c in stats.cycles)} rows in "
          f"{len(statements)} MERGE(s); most per table in 10 s: {max(max_dml_in_window(statements).values(), default=0)}, "
          f"at once: {max(max_in_flight(statements).values(), default=0)}", flush=True)
    if not finished:
        raise TimeoutError(f"fan-out: streams still open after {timeout:g} s: {', '.join(sorted(stats.open_streams))}")
    return stats


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m scripts.fan_out worker|merger`: one role in a process of its own, configured by the environment
    (as a deployed function is), until killed: the multi-process setting of queue mode on a BigQuery emulator.
    `python -m scripts.fan_out fold`: folds every fresh table into its table now and exits (before switching
    DISPATCH from queue to inline, or stopping the merger: nothing else folds them)."""
    import argparse

    from config.settings import get_settings
    from observability.logger import configure_logging

    parser = argparse.ArgumentParser(prog="scripts.fan_out")
    parser.add_argument("role", choices=["worker", "merger", "fold"])
    parser.add_argument("--sources", default="gmail", help="comma-separated (worker)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ack-deadline", type=int, default=ACK_DEADLINE_SECONDS)
    args = parser.parse_args(argv)
    settings = get_settings().model_copy(update={"dispatch": "queue"})
    configure_logging(settings.log_level)
    runtime = Runtime.from_settings(settings)
    if args.role == "fold":
        folded = Merger(runtime.warehouse, settings).fold(force=True)
        print(f"folded {sum(folded.values()):,} rows: " + (", ".join(f"{t} {n:,}" for t, n in folded.items()) or "none"))
        return
    if args.role == "merger":
        ensure_topology(settings, [], ack_deadline_seconds=args.ack_deadline)
        Merger(runtime.warehouse, settings).run_for(float("inf"))
        return
    with LocalFanOut(runtime, args.sources.split(","), workers=args.workers, merge=False,
                     ack_deadline_seconds=args.ack_deadline):
        threading.Event().wait()


if __name__ == "__main__":
    main()
