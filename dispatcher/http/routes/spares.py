"""HTTP routes of the spare parts stock: `GET /api/v1/spares` (managers and admins).

No `from __future__ import annotations` here: FastAPI must see the dependency types.
"""

from typing import Any

from fastapi import APIRouter, HTTPException
from psycopg.rows import tuple_row

from dispatcher import views
from dispatcher.http import models
from dispatcher.http.deps import Deps
from dispatcher.store import spares
from schemas.states import Role

ALERTS_SHOWN = 50  # the latest low-stock alerts in the answer; older ones stay in the table


def router(deps: Deps) -> APIRouter:
    """Register the spares list."""
    return _routes(deps, deps.db, deps.who)


def _routes(deps: Deps, db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()

    @api.get("/api/v1/spares", response_model=models.SparePage)
    def list_spares(conn: db, who: who_dep, site: str | None = None) -> dict[str, Any]:
        """Stock per site and part with reservations, low-stock flags and recent alerts."""
        if who.role not in (Role.MANAGER, Role.ADMIN):
            raise HTTPException(403, "the spares stock is for managers and admins; "
                                     "use a manager or admin token")
        items = spares.stock(conn, site)
        with conn.cursor(row_factory=tuple_row) as cur:
            alerts = cur.execute(
                "SELECT id, site_id, part, kind, available, threshold, at FROM spare_alerts"
                " WHERE %s::text IS NULL OR site_id = %s ORDER BY id DESC LIMIT %s",
                (site, site, ALERTS_SHOWN)).fetchall()
        return {
            "items": [{"site": s.site, "part": s.part, "kind": s.kind, "count": s.count,
                       "reserved": s.reserved, "available": s.available,
                       "low_stock_threshold": s.threshold, "low": s.low,
                       "location": s.location} for s in items],
            "alerts": [{"id": a[0], "site": a[1], "part": a[2], "kind": a[3], "available": a[4],
                        "threshold": a[5], "at": views.ts(a[6])} for a in alerts],
            "next": None,
        }

    return api
