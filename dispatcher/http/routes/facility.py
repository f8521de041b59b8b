"""Read-only HTTP routes of what the collector found beyond single parts.

`GET /api/v1/facility-incidents[/{id}]`: racks that went down together (power or
network). Staff see every one with all its hosts; a customer sees only those that link
one of its hosts, and only its own hosts in them. `GET /api/v1/predictions`: proactive
jobs without an SLA clock; a customer sees its own hosts'.

No `from __future__ import annotations` here: FastAPI must see the dependency types.
"""

from typing import Any

from fastapi import APIRouter, HTTPException

from dispatcher import views
from dispatcher.http import models
from dispatcher.http.deps import Cursor, Deps, Limit
from dispatcher.store.tokens import Principal
from schemas.states import FacilityState, PredictionState, Role

STAFF = (Role.TECHNICIAN, Role.MANAGER, Role.ADMIN)

_FACILITY = (
    "SELECT f.id, f.site_id, f.room, f.rack, f.cause, f.state, f.detected_at, f.deadline,"
    " f.resolved_at, f.sla_minutes, f.credit_percent, f.credit_period_minutes,"
    " f.credit_cap_percent, f.rack_hosts, f.scope, f.scope_id,"
    " (SELECT s.name FROM sites s WHERE s.id = f.site_id) AS site_name FROM facility_incidents f")


def _facility(row: dict[str, Any], hosts: list[dict[str, Any]], staff: bool) -> dict[str, Any]:
    """The public shape of a facility incident; rack totals only for staff."""
    out = {
        "id": row["id"], "site": row["site_id"], "site_name": row["site_name"],
        "room": row["room"], "rack": row["rack"],
        "scope": row["scope"], "scope_id": row["scope_id"],  # rack | pdu | switch, and its id
        "cause": row["cause"], "state": row["state"], "detected_at": views.ts(row["detected_at"]),
        "deadline": views.ts(row["deadline"]), "resolved_at": views.ts(row["resolved_at"]),
        "policy": {"sla_minutes": row["sla_minutes"],
                   "credit_percent": float(row["credit_percent"]),
                   "credit_period_minutes": row["credit_period_minutes"],
                   "credit_cap_percent": float(row["credit_cap_percent"])},
        "hosts": [{"host": h["host_id"], "customer": h["customer_id"],
                   "silent_since": views.ts(h["last_message"]), "back_at": views.ts(h["back_at"])}
                  for h in hosts],
    }
    if staff:
        out["rack_hosts"] = row["rack_hosts"]
    return out


def _hosts(conn: Any, ids: list[int], customer: str | None) -> dict[int, list[dict[str, Any]]]:
    """Linked hosts per facility incident, only the customer's when one is given."""
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for h in conn.execute(
            "SELECT facility_id, host_id, customer_id, last_message, back_at"
            " FROM facility_incident_hosts WHERE facility_id = ANY(%s)"
            " AND (%s::text IS NULL OR customer_id = %s) ORDER BY facility_id, host_id",
            (ids, customer, customer)).fetchall():
        out[h["facility_id"]].append(h)
    return out


def router(deps: Deps) -> APIRouter:
    """The routes, with the app's own connection and principal dependencies."""
    return _routes(deps, deps.db, deps.who)


def _routes(deps: Deps, db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()

    def scope(who: Principal) -> str | None:
        """The customer a caller is limited to (None: staff see all)."""
        if who.role is Role.CUSTOMER:
            return who.customer
        if who.role in STAFF:
            return None
        raise HTTPException(403, "use a staff or customer token")

    @api.get("/api/v1/facility-incidents", response_model=models.FacilityPage,
             response_model_exclude_unset=True)
    def list_facility(conn: db, who: who_dep, state: FacilityState | None = None,
                      site: str | None = None,
                      limit: Limit = 50,
                      cursor: Cursor = None) -> dict[str, Any]:
        """Facility incidents, newest first; a customer sees those with its hosts."""
        customer = scope(who)
        rows = conn.execute(
            _FACILITY + " WHERE (%(state)s::text IS NULL OR f.state = %(state)s)"
            " AND (%(site)s::text IS NULL OR f.site_id = %(site)s)"
            " AND (%(cursor)s::bigint IS NULL OR f.id < %(cursor)s)"
            " AND (%(customer)s::text IS NULL OR EXISTS (SELECT 1 FROM facility_incident_hosts"
            "  fh WHERE fh.facility_id = f.id AND fh.customer_id = %(customer)s))"
            " ORDER BY f.id DESC LIMIT %(limit)s",
            {"state": state and state.value, "site": site, "cursor": cursor,
             "customer": customer, "limit": limit + 1}).fetchall()
        page = rows[:limit]
        hosts = _hosts(conn, [r["id"] for r in page], customer)
        items = [_facility(r, hosts[r["id"]], customer is None) for r in page]
        return {"items": items, "next": items[-1]["id"] if len(rows) > limit else None}

    @api.get("/api/v1/facility-incidents/{facility_id}", response_model=models.Facility,
             response_model_exclude_unset=True)
    def get_facility(facility_id: int, conn: db, who: who_dep) -> dict[str, Any]:
        """One facility incident with its (visible) hosts."""
        customer = scope(who)
        row = conn.execute(_FACILITY + " WHERE f.id = %s", (facility_id,)).fetchone()
        hosts = _hosts(conn, [facility_id], customer)[facility_id] if row else []
        if row is None or (customer is not None and not hosts):
            raise HTTPException(404, f"no facility incident {facility_id} that you can see; "
                                     "list them at /api/v1/facility-incidents")
        out = _facility(row, hosts, customer is None)
        if customer is None:  # staff: who was told, why and when; credits issued
            out["timeline"] = [
                {"at": views.ts(e["at"]), "actor": e["actor"], "kind": e["kind"],
                 "detail": e["detail"]} for e in conn.execute(
                    "SELECT at, actor, kind, detail FROM facility_events WHERE facility_id = %s"
                    " ORDER BY at, id", (facility_id,))]
        return out

    @api.get("/api/v1/predictions", response_model=models.PredictionPage)
    def list_predictions(conn: db, who: who_dep, state: PredictionState | None = None,
                         host: str | None = None, site: str | None = None,
                         limit: Limit = 50,
                         cursor: Cursor = None) -> dict[str, Any]:
        """Predictions (proactive jobs, no SLA clock), newest first; a customer sees its own."""
        customer = scope(who)
        rows = conn.execute(
            "SELECT id, host_id, site_id, customer_id, component, kind, prediction, rule, slot,"
            " serial, state, detected_at, last_seen, repeats, evidence, last_evidence,"
            " (SELECT json_build_object('id', pj.id, 'state', pj.state, 'planned_at',"
            "  to_char(pj.planned_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))"
            "  FROM proactive_jobs pj WHERE pj.prediction_id = predictions.id"
            "  ORDER BY pj.id DESC LIMIT 1) AS job"
            " FROM predictions WHERE (%(state)s::text IS NULL OR state = %(state)s)"
            " AND (%(host)s::text IS NULL OR host_id = %(host)s)"
            " AND (%(site)s::text IS NULL OR site_id = %(site)s)"
            " AND (%(customer)s::text IS NULL OR customer_id = %(customer)s)"
            " AND (%(cursor)s::bigint IS NULL OR id < %(cursor)s)"
            " ORDER BY id DESC LIMIT %(limit)s",
            {"state": state and state.value, "host": host, "site": site, "customer": customer,
             "cursor": cursor, "limit": limit + 1}).fetchall()
        items = [{
            "id": r["id"], "host": r["host_id"], "site": r["site_id"],
            "customer": r["customer_id"], "component": r["component"], "kind": r["kind"],
            "prediction": r["prediction"], "rule": r["rule"], "slot": r["slot"],
            "serial": r["serial"], "state": r["state"],
            "detected_at": views.ts(r["detected_at"]), "last_seen": views.ts(r["last_seen"]),
            "repeats": r["repeats"], "evidence": r["evidence"],
            "last_evidence": r["last_evidence"],
            # the proactive job's state (no clock), read-only: planned, acknowledged, done...
            "job": r["job"]} for r in rows[:limit]]
        return {"items": items, "next": items[-1]["id"] if len(rows) > limit else None}

    return api
