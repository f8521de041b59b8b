"""HTTP routes of the customer's planned work and maintenance windows (issue 16, item 4).

`GET /api/v1/planned-work` (and `/{job_id}`): proactive jobs on the customer's hosts with
the evidence, the plan's slot, the slots it may move to and the timeline; staff see all.
The customer accepts, moves (inside a window) or declines a plan; each step is in
dispatcher/store/plans.py. `GET/PUT /api/v1/maintenance-windows`: the customer's windows.

No `from __future__ import annotations` here: FastAPI must see the dependency types.
"""

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import AwareDatetime, BaseModel, Field

from dispatcher import views
from dispatcher.domain import care, windows
from dispatcher.domain.windows import WindowError
from dispatcher.http import models_care
from dispatcher.http.deps import Cursor, Deps, Limit
from dispatcher.store import Conn, plans
from dispatcher.store.plans import PlanRefused
from dispatcher.store.tokens import Principal
from schemas.states import Role

STAFF = (Role.TECHNICIAN, Role.MANAGER, Role.ADMIN)
_COLUMNS = ("pj.id, pj.state, pj.plan_state, pj.site_id, pj.technician_id, pj.spare_part,"
            " pj.part_note, pj.slot_start, pj.slot_end, pj.prediction_id, p.customer_id,"
            " p.host_id, p.component, p.kind, p.prediction, p.detected_at, p.last_seen,"
            " p.evidence, p.last_evidence")
_FROM = " FROM proactive_jobs pj JOIN predictions p ON p.id = pj.prediction_id"


class MoveIn(BaseModel):
    """Where the customer wants the swap: a start inside one of its windows (RFC 3339)."""

    start: AwareDatetime


class DeclineIn(BaseModel):
    """Why the customer does not want the part swapped now (optional)."""

    reason: str | None = Field(default=None, max_length=1000)


class WindowsIn(BaseModel):
    """The customer's windows, as in the fleet file: [{days, start, end, timezone}]."""

    windows: list[dict[str, Any]] = Field(max_length=windows.MAX_WINDOWS)


def _scope(who: Principal) -> str | None:
    """The customer a caller is limited to (None: staff see all)."""
    if who.role is Role.CUSTOMER:
        return who.customer
    if who.role in STAFF:
        return None
    raise HTTPException(403, "use a staff or customer token")


def _slot(s: windows.Slot) -> dict[str, Any]:
    return {"start": views.ts(s.start), "end": views.ts(s.end),
            "window_start": views.ts(s.window_start), "window_end": views.ts(s.window_end)}


def shown(conn: Conn, r: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A job row as its customer sees it."""
    ws = plans.windows_of(conn, r["customer_id"])
    plan = care.Plan(r["id"], r["slot_start"], r["slot_end"], r["spare_part"], r["part_note"],
                     r["site_id"])
    live = r["state"] in plans.LIVE and r["plan_state"] != "declined"
    return {
        "id": r["id"], "state": r["state"], "plan_state": r["plan_state"],
        "customer": r["customer_id"], "host": r["host_id"], "site": r["site_id"],
        "component": r["component"], "kind": r["kind"], "prediction": r["prediction"],
        "detected_at": views.ts(r["detected_at"]), "last_seen": views.ts(r["last_seen"]),
        "evidence": care.evidence(plans.prediction_of(r)),
        "evidence_raw": r["last_evidence"] or r["evidence"],
        "spare_part": r["spare_part"], "part_note": r["part_note"],
        "technician": r["technician_id"], "slot_start": views.ts(r["slot_start"]),
        "slot_end": views.ts(r["slot_end"]), "has_windows": bool(ws),
        "plan": care.plan_line(plan),
        "choices": [_slot(c) for c in windows.choices(ws, now)] if live else [],
        "timeline": [{"at": views.ts(e["at"]), "actor": e["actor"], "kind": e["kind"],
                      "detail": e["detail"]} for e in plans.q(
            conn, "SELECT at, actor, kind, detail FROM proactive_job_events"
                  " WHERE proactive_job_id = %s ORDER BY at, id", (r["id"],))],
    }


def _one(conn: Conn, who: Principal, job_id: int) -> dict[str, Any]:
    customer = _scope(who)
    r = plans.q(conn, f"SELECT {_COLUMNS}{_FROM} WHERE pj.id = %s", (job_id,)).fetchone()
    if r is None or (customer is not None and r["customer_id"] != customer):
        raise HTTPException(404, f"no planned work {job_id} on your hosts; list it at "
                                 "/api/v1/planned-work")
    return shown(conn, r, datetime.now(UTC))


def _windows(conn: Conn, customer: str) -> dict[str, Any]:
    row = plans.q(conn, "SELECT windows, updated_at, updated_by FROM maintenance_windows"
                        " WHERE customer_id = %s", (customer,)).fetchone()
    return {"customer": customer, "windows": row["windows"] if row else [],
            "updated_at": views.ts(row["updated_at"]) if row else None,
            "updated_by": row["updated_by"] if row else None}


def router(deps: Deps) -> APIRouter:
    """The routes, with the app's own connection and principal dependencies."""
    return _routes(deps.db, deps.who)


def _routes(db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()

    def step(conn: Conn, who: Principal, job_id: int, name: str,
             start: datetime | None = None, reason: str | None = None) -> dict[str, Any]:
        if who.role is not Role.CUSTOMER:
            raise HTTPException(403, "the customer whose host it is answers a plan")
        try:
            with conn.transaction():
                plans.answer(conn, job_id, who.customer or "", name, datetime.now(UTC),
                             start, reason)
        except PlanRefused as exc:
            raise HTTPException(exc.status, exc.detail) from None
        return _one(conn, who, job_id)

    @api.get("/api/v1/planned-work", response_model=models_care.PlannedWorkPage)
    def list_work(conn: db, who: who_dep, limit: Limit = 50,
                  cursor: Cursor = None) -> dict[str, Any]:
        """Planned work (proactive jobs) on the customer's hosts, newest first."""
        customer = _scope(who)
        rows = plans.q(conn, f"SELECT {_COLUMNS}{_FROM} WHERE (%(c)s::text IS NULL OR"
                             " p.customer_id = %(c)s) AND (%(cur)s::bigint IS NULL OR pj.id <"
                             " %(cur)s) ORDER BY pj.id DESC LIMIT %(n)s",
                       {"c": customer, "cur": cursor, "n": limit + 1}).fetchall()
        now = datetime.now(UTC)
        items = [shown(conn, r, now) for r in rows[:limit]]
        return {"items": items, "next": items[-1]["id"] if len(rows) > limit else None}

    @api.get("/api/v1/planned-work/{job_id}", response_model=models_care.PlannedWork)
    def get_work(job_id: int, conn: db, who: who_dep) -> dict[str, Any]:
        """One planned work with its evidence, plan, slots to move to and timeline."""
        return _one(conn, who, job_id)

    @api.post("/api/v1/planned-work/{job_id}/accept", response_model=models_care.PlannedWork)
    def accept(job_id: int, conn: db, who: who_dep) -> dict[str, Any]:
        """The customer accepts the planned slot."""
        return step(conn, who, job_id, "accepted")

    @api.post("/api/v1/planned-work/{job_id}/move", response_model=models_care.PlannedWork)
    def move(job_id: int, body: MoveIn, conn: db, who: who_dep) -> dict[str, Any]:
        """The customer moves the swap to another slot inside one of its windows."""
        return step(conn, who, job_id, "moved", start=body.start.astimezone(UTC))

    @api.post("/api/v1/planned-work/{job_id}/decline", response_model=models_care.PlannedWork)
    def decline(job_id: int, conn: db, who: who_dep,
                body: DeclineIn | None = None) -> dict[str, Any]:
        """The customer declines the swap: the job ends, the reserved spare is released."""
        return step(conn, who, job_id, "declined", reason=body.reason if body else None)

    @api.get("/api/v1/maintenance-windows", response_model=models_care.Windows)
    def get_windows(conn: db, who: who_dep, customer: str | None = None) -> dict[str, Any]:
        """A customer's maintenance windows (a customer: its own; staff name `customer`)."""
        own = _scope(who)
        if own is not None and customer not in (None, own):
            raise HTTPException(404, f"no customer {customer!r} visible to this token")
        target = own or customer
        if target is None:
            raise HTTPException(422, "name the customer: ?customer=<id>")
        if plans.q(conn, "SELECT 1 FROM customers WHERE id = %s", (target,)).fetchone() is None:
            raise HTTPException(404, f"no customer {target!r}")
        return _windows(conn, target)

    @api.put("/api/v1/maintenance-windows", response_model=models_care.Windows)
    def put_windows(body: WindowsIn, conn: db, who: who_dep) -> dict[str, Any]:
        """The customer sets its maintenance windows; new plans fall inside them."""
        if who.role is not Role.CUSTOMER or who.customer is None:
            raise HTTPException(403, "a customer sets its own maintenance windows")
        try:
            ws = windows.parse_windows(body.windows)
        except WindowError as exc:
            raise HTTPException(422, f"windows{exc.path}: {exc.reason}") from None
        with conn.transaction():
            plans.save_windows(conn, who.customer, ws, f"customer:{who.customer}",
                               datetime.now(UTC))
        return _windows(conn, who.customer)

    return api
