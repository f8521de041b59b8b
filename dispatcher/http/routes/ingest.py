"""`GET /api/v1/ingest`: whether the collectors' input flows, for /ops and outside checks.

What it answers is read in dispatcher/store/ingest.py (the metrics read the same).

No `from __future__ import annotations` here: FastAPI must see the dependency types.
"""

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException

from dispatcher.http.deps import Deps
from dispatcher.store.ingest import Ingest, read
from dispatcher.store.tokens import Principal
from schemas.states import Role

STAFF = (Role.TECHNICIAN, Role.MANAGER, Role.ADMIN)


def router(deps: Deps) -> APIRouter:
    """The route, with the app's own connection and principal dependencies."""
    return _routes(deps, deps.db, deps.who)


def _routes(deps: Deps, db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()

    @api.get("/api/v1/ingest")
    def ingest(conn: db, who: who_dep) -> Ingest:
        """The collectors' readiness and why not; staff only."""
        principal: Principal = who
        if principal.role not in STAFF:
            raise HTTPException(403, "ingest status is for staff: use a technician, manager "
                                     "or admin token")
        return read(conn, datetime.now(UTC))

    return api
