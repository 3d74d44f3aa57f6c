"""HubSpot sequences and enrollments -> rows. Pure: no I/O."""
from __future__ import annotations

from typing import Any

from pipeline.runner import RejectedRecord
from transform.email_normalizer import email_domain, normalize_email
from transform.values import to_datetime, to_str


def sequence_row(sequence: dict[str, Any]) -> dict[str, Any]:
    """The hubspot_sequences row of a v4 sequence."""
    sequence_id = to_str(sequence.get("id"))
    if not sequence_id:
        raise RejectedRecord("missing sequence id")
    updated = to_datetime(sequence.get("updatedAt")) or to_datetime(sequence.get("createdAt"))
    if updated is None:
        raise RejectedRecord("missing updatedAt and createdAt")
    return {"sequence_id": sequence_id, "name": to_str(sequence.get("name")), "user_id": to_str(sequence.get("userId")),
            "folder_id": to_str(sequence.get("folderId")), "created_at": to_datetime(sequence.get("createdAt")),
            "updated_at": updated}


def enrollment_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The hubspot_sequence_enrollments row of a searched contact's enrollment (none when not enrolled)."""
    enrollment = record.get("enrollment")
    if not enrollment:
        return []
    enrollment_id = to_str(enrollment.get("id"))
    enrolled_at = to_datetime(enrollment.get("enrolledAt"))
    if not enrollment_id or enrolled_at is None:
        raise RejectedRecord("enrollment without id or enrolledAt")
    email = normalize_email(to_str(enrollment.get("toEmail")))
    return [{"enrollment_id": enrollment_id, "contact_id": str(record["contact"]["id"]),
             "sequence_id": to_str(enrollment.get("sequenceId")), "sequence_name": to_str(enrollment.get("sequenceName")),
             "to_email": to_str(enrollment.get("toEmail")), "email": email, "domain": email_domain(email),
             "enrolled_at": enrolled_at, "enrolled_by": to_str(enrollment.get("enrolledBy")),
             "enrolled_by_email": normalize_email(to_str(enrollment.get("enrolledByEmail"))),
             "updated_at": to_datetime(enrollment.get("updatedAt"))}]
