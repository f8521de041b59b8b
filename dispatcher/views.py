"""Turns database rows into the API's JSON shapes (times as RFC 3339 UTC)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

INCIDENT_COLUMNS = (
    "i.id, i.host_id, i.site_id, i.customer_id, i.component, i.kind, i.failure, i.slot,"
    " i.serial, i.state, i.detected_at, i.deadline, i.sla_minutes, i.verified_at, i.closed_at,"
    " i.assignee, t.name AS assignee_name, i.evidence, h.rack, h.room, h.unit,"
    " c.amount AS credit_amount, c.currency AS credit_currency, c.percent AS credit_percent"
)
INCIDENT_FROM = (
    " FROM incidents i JOIN hosts h ON h.id = i.host_id"
    " LEFT JOIN technicians t ON t.id = i.assignee"
    " LEFT JOIN credits c ON c.incident_id = i.id"
)


def ts(value: datetime | None) -> str | None:
    """RFC 3339 UTC with a Z, or None."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def money(value: Decimal | None) -> str | None:
    """Money as a decimal string, never a float."""
    return None if value is None else f"{value:.2f}"


def incident(row: dict[str, Any]) -> dict[str, Any]:
    """The public shape of an incident."""
    credit = None
    if row["credit_amount"] is not None:
        credit = {"amount": money(row["credit_amount"]), "currency": row["credit_currency"],
                  "percent": float(row["credit_percent"])}
    return {
        "id": row["id"], "host": row["host_id"], "site": row["site_id"],
        "customer": row["customer_id"], "component": row["component"], "kind": row["kind"],
        "failure": row["failure"], "slot": row["slot"], "serial": row["serial"],
        "state": row["state"], "detected_at": ts(row["detected_at"]),
        "deadline": ts(row["deadline"]), "sla_minutes": row["sla_minutes"],
        "verified_at": ts(row["verified_at"]), "closed_at": ts(row["closed_at"]),
        "assignee": row["assignee"], "assignee_name": row["assignee_name"],
        "location": {"room": row["room"], "rack": row["rack"], "unit": row["unit"]},
        "evidence": row["evidence"], "credit": credit,
    }


def job(row: dict[str, Any]) -> dict[str, Any]:
    """The public shape of a job, with the incident it serves."""
    return {
        "id": row["job_id"], "state": row["job_state"], "technician": row["technician_id"],
        "dispatched_at": ts(row["dispatched_at"]), "acknowledged_at": ts(row["acknowledged_at"]),
        "on_site_at": ts(row["on_site_at"]), "replaced_at": ts(row["replaced_at"]),
        "new_serial": row["new_serial"], "incident": incident(row),
    }


def timeline_entry(row: dict[str, Any]) -> dict[str, Any]:
    """One incident event; a technician's action also says when the phone made it."""
    detail = row["detail"]
    device = detail.get("device_time") if isinstance(detail, dict) else None
    return {"at": ts(row["at"]), "actor": row["actor"], "kind": row["kind"],
            "detail": detail, "device_at": device if isinstance(device, str) else None}


def review(row: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """The public shape of a breach review: the cause and who does what by when."""
    return {"cause": row["cause"], "author": row["author"],
            "created_at": ts(row["created_at"]), "updated_at": ts(row["updated_at"]),
            "items": [{"n": i["n"], "text": i["text"], "owner": i["owner"],
                       "due_at": ts(i["due_at"]), "done_at": ts(i["done_at"])} for i in items]}
