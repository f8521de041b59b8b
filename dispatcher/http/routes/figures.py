"""The managers' figures: promises kept (7 and 30 days), median and p90 time to acknowledge,
to arrive and to fix, credits this month; overall, per site and per technician. JSON for
/ops's charts and the same figures as CSV. A manager sees the sites they manage (an
executive, whose token is a manager's, all of them); an admin sees every site.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at runtime.
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from dispatcher import views
from dispatcher.domain import figures as f
from dispatcher.http.deps import Deps
from dispatcher.http.models import Model
from dispatcher.store import Conn
from dispatcher.store import figures as store
from dispatcher.store.tokens import Principal
from schemas.states import Role

SiteQuery = Annotated[str | None, Query(min_length=1, max_length=100,
                                        description="only this site (one of yours)")]


class SpreadOut(Model):
    """One measure: how many, the median and the p90, in seconds (null: no data)."""

    n: int
    p50_seconds: float | None
    p90_seconds: float | None


class FigureRow(Model):
    """One group's figures over one period."""

    scope: str  # overall, site or technician
    key: str | None
    period_days: int
    fixed: int
    kept: int
    kept_share: float | None
    acknowledge: SpreadOut
    arrive: SpreadOut
    fix: SpreadOut
    credits_this_month: int
    credit_amounts: dict[str, str]  # currency -> amount, a decimal string


class DayOut(Model):
    """Fixes verified on one UTC day and how many kept the promise."""

    day: str
    fixed: int
    kept: int


class Figures(Model):
    """The figures of the caller's sites, and the last 30 days' promises kept per day."""

    generated_at: str | None
    month: str
    sites: list[str] | None  # the sites the figures cover (null: every site)
    rows: list[FigureRow]
    daily: list[DayOut]


def sites_of(conn: Conn, who: Principal, site: str | None = None) -> list[str] | None:
    """The sites the caller's figures and board cover (None: all); 403 for other roles,
    404 for a site that is not theirs."""
    if who.role is Role.ADMIN:
        scope = None
    elif who.role is Role.MANAGER:
        scope = store.scope_of(conn, who.person)
    else:
        raise HTTPException(403, "the operations figures are for managers, executives and "
                                 "admins")
    if site is None:
        return scope
    if scope is not None and site not in scope:
        raise HTTPException(404, f"no site {site!r} among yours ({', '.join(scope) or 'none'}):"
                                 " leave out ?site= for all of them")
    return [site]


def _spread(s: f.Spread) -> dict[str, Any]:
    return {"n": s.n, "p50_seconds": s.p50, "p90_seconds": s.p90}


def _row(r: f.Row) -> dict[str, Any]:
    return {"scope": r.scope, "key": r.key, "period_days": r.period_days, "fixed": r.fixed,
            "kept": r.kept, "kept_share": r.kept_share,
            "acknowledge": _spread(r.measures.get("ack", f.Spread())),
            "arrive": _spread(r.measures.get("arrive", f.Spread())),
            "fix": _spread(r.measures.get("fix", f.Spread())),
            "credits_this_month": r.credits, "credit_amounts": dict(r.credit_amounts)}


def router(deps: Deps) -> APIRouter:
    """Register the figures and their CSV."""
    return _routes(deps.db, deps.who)


def _routes(db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()

    @api.get("/api/v1/figures", response_model=Figures)
    def figures(conn: db, who: who_dep, site: SiteQuery = None) -> dict[str, Any]:
        """How the promise went at the caller's sites, for /ops's charts."""
        scope, now = sites_of(conn, who, site), datetime.now(UTC)
        return {"generated_at": views.ts(now), "month": now.strftime("%Y-%m"), "sites": scope,
                "rows": [_row(r) for r in store.rows(conn, now, scope)],
                "daily": [{"day": d.day.isoformat(), "fixed": d.fixed, "kept": d.kept}
                          for d in store.daily(conn, now, scope)]}

    @api.get("/api/v1/figures.csv", include_in_schema=False)
    def figures_csv(conn: db, who: who_dep, site: SiteQuery = None) -> Response:
        """The same figures as CSV: a header row, one row per group and period."""
        scope, now = sites_of(conn, who, site), datetime.now(UTC)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", site or "all")  # a header, never a newline
        name = f"hourglass-figures-{safe}-{now.strftime('%Y-%m-%d')}.csv"
        return Response(f.to_csv(store.rows(conn, now, scope)), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return api
