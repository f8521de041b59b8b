"""The credit ledger: hardware credits (one per incident) and facility credits (one per
host of a rack that went down), told apart by `source`."""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from dispatcher import views
from dispatcher.http import models
from dispatcher.http.deps import Deps
from schemas.states import Role


def router(deps: Deps) -> APIRouter:
    """The credits route."""
    return _routes(deps.db, deps.who)


def _routes(db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()

    @api.get("/api/v1/credits", response_model=models.CreditPage)
    def credits(conn: db, who: who_dep,
                month: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] = None,
                ) -> dict[str, Any]:
        """The credit ledger (a customer sees its own)."""
        if who.role not in (Role.ADMIN, Role.CUSTOMER):
            raise HTTPException(403, "the credit ledger is for admins and the customer")
        where, args = ["TRUE"], []
        if who.role is Role.CUSTOMER:
            where.append("customer_id = %s")
            args.append(who.customer or "")
        if month:
            where.append("to_char(issued_at AT TIME ZONE 'UTC', 'YYYY-MM') = %s")
            args.append(month)
        # ids are unique within a source
        rows = conn.execute(
            "SELECT * FROM (SELECT 'hardware' AS source, c.id, c.incident_id,"
            " NULL::bigint AS facility_id, i.host_id, c.customer_id, c.amount, c.currency,"
            " c.percent, c.periods, c.late_seconds, c.issued_at FROM credits c"
            " JOIN incidents i ON i.id = c.incident_id"
            " UNION ALL SELECT 'facility', id, NULL, facility_id, host_id, customer_id, amount,"
            " currency, percent, periods, late_seconds, issued_at FROM facility_credits) x"
            f" WHERE {' AND '.join(where)} ORDER BY issued_at, source DESC, id",
            args).fetchall()
        return {"items": [{"id": r["id"], "incident": r["incident_id"],
                           "customer": r["customer_id"], "amount": views.money(r["amount"]),
                           "currency": r["currency"], "percent": float(r["percent"]),
                           "periods": r["periods"], "late_seconds": r["late_seconds"],
                           "issued_at": views.ts(r["issued_at"]), "source": r["source"],
                           "facility_incident": r["facility_id"], "host": r["host_id"]}
                          for r in rows], "next": None}

    return api
