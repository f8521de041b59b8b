"""Liveness, readiness and metrics, for the orchestrator and Prometheus."""

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from dispatcher.http.deps import Deps
from dispatcher.metrics import render


class Status(BaseModel):
    """"ok" (alive) or "ready"."""

    status: str


def router(deps: Deps, engine_alive: Callable[[], bool] | None = None) -> APIRouter:
    """The health routes; readiness also asks whether the dispatcher loop runs."""
    return _routes(deps.db, engine_alive)


def _routes(db: Any, engine_alive: Callable[[], bool] | None) -> APIRouter:
    api = APIRouter()

    @api.get("/healthz", include_in_schema=False)
    def healthz() -> Status:
        return Status(status="ok")

    @api.get("/readyz", include_in_schema=False)
    def readyz(conn: db) -> Status:
        conn.execute("SELECT 1")
        if engine_alive is not None and not engine_alive():
            raise HTTPException(503, "the dispatcher loop has not run recently")
        return Status(status="ready")

    @api.get("/metrics", include_in_schema=False)
    def metrics(conn: db) -> PlainTextResponse:
        return PlainTextResponse(render(conn), media_type="text/plain; version=0.0.4")

    return api
