"""Turns database rows into the API's JSON shapes (times as RFC 3339 UTC)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from dispatcher.domain import serials

INCIDENT_COLUMNS = (
    "i.id, i.host_id, i.site_id, i.customer_id, i.component, i.kind, i.failure, i.slot,"
    " i.serial, i.state, i.detected_at, i.deadline, i.sla_minutes, i.verified_at, i.closed_at,"
    " i.assignee, t.name AS assignee_name, i.evidence, h.rack, h.room, h.unit,"
    " c.amount AS credit_amount, c.currency AS credit_currency, c.percent AS credit_percent,"
    # cage access (dispatcher/store/cage.py): the contract's rule and the customer's decision
    " CASE WHEN cu.cage_access = 'ask' THEN coalesce(cd.decision, 'asked')"
    " ELSE 'not_needed' END AS cage_access, cd.decided_by AS cage_decided_by,"
    " cd.decided_at AS cage_decided_at"
)
INCIDENT_FROM = (
    " FROM incidents i JOIN hosts h ON h.id = i.host_id"
    " LEFT JOIN technicians t ON t.id = i.assignee"
    " LEFT JOIN credits c ON c.incident_id = i.id"
    " JOIN customers cu ON cu.id = i.customer_id"
    " LEFT JOIN cage_decisions cd ON cd.incident_id = i.id"
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
        "cage_access": row["cage_access"],
        "cage_decision": None if row["cage_decided_at"] is None else {
            "by": row["cage_decided_by"], "at": ts(row["cage_decided_at"])},
    }


def job(row: dict[str, Any], shapes: Mapping[str, serials.Shape] | None = None
        ) -> dict[str, Any]:
    """The public shape of a job, with the incident it serves and its card."""
    return {
        "id": row["job_id"], "state": row["job_state"], "technician": row["technician_id"],
        "dispatched_at": ts(row["dispatched_at"]), "acknowledged_at": ts(row["acknowledged_at"]),
        "on_site_at": ts(row["on_site_at"]), "replaced_at": ts(row["replaced_at"]),
        "new_serial": row["new_serial"], "incident": incident(row), "card": card(row, shapes),
    }


def _json_ts(value: str | None) -> str | None:
    """A timestamp PostgreSQL's to_jsonb wrote, as RFC 3339 UTC with a Z."""
    return ts(datetime.fromisoformat(value)) if value else None


def card(row: dict[str, Any], shapes: Mapping[str, serials.Shape] | None = None
         ) -> dict[str, Any]:
    """What the technician's job card shows beyond the incident: where, with what, asked."""
    want = serials.shape(row["kind"], shapes)
    asked = row.get("pause_request")
    spare = row.get("spare")
    return {
        "site_name": row.get("site_name"),
        "spare": {"part": spare["part"], "location": spare["location"]} if spare else None,
        "serial_shape": {"pattern": want.pattern, "expected": want.expected,
                         "example": want.example},
        "pause_request": None if not asked else {
            "id": asked["id"], "state": asked["state"], "reason": asked["reason"],
            "note": asked["note"], "requested_at": _json_ts(asked["requested_at"]),
            "answered_at": _json_ts(asked["answered_at"]), "answered_by": asked["answered_by"],
            "answer": asked["answer"]},
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
