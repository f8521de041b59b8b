"""HTTP routes of claims: the customer's word that support failed, and what follows.

The customer raises a claim, accepts or rejects the owning manager's action plan, gives
notice and answers the exit survey; managers (executives use manager tokens) and admins
assign, present plans and mark items done. Technicians have no part in claims.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at runtime.
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query
from psycopg.types.json import Jsonb
from pydantic import AwareDatetime, BaseModel, Field

from dispatcher.domain import claims as rules
from dispatcher.http import models
from dispatcher.http.deps import Cursor, Deps, Limit
from dispatcher.store import Conn, claims
from dispatcher.store.claims import ClaimRefused
from dispatcher.store.tokens import Principal
from schemas.states import OPEN_CLAIM_STATES, ClaimState, Role

STAFF = (Role.MANAGER, Role.ADMIN)


class ClaimIn(BaseModel):
    """What the customer believes went wrong, about one incident or support in general."""

    incident: int | None = Field(default=None, ge=1)
    text: str = Field(min_length=3, max_length=5000)


class AssignIn(BaseModel):
    """The manager who owns the investigation (a person id of the fleet file)."""

    manager: str = Field(min_length=1, max_length=100)


class ItemIn(BaseModel):
    """One action: what, who owns it, by when (RFC 3339 with a zone)."""

    text: str = Field(min_length=3, max_length=1000)
    owner: str = Field(min_length=1, max_length=100)
    due_at: AwareDatetime


class PlanIn(BaseModel):
    """The manager's action plan."""

    items: list[ItemIn] = Field(max_length=rules.MAX_ITEMS)


class AnswerIn(BaseModel):
    """The customer's optional words with an answer to a plan."""

    comment: str | None = Field(default=None, max_length=2000)


class ExitSurveyIn(BaseModel):
    """How likely the departing customer is to recommend us, and why."""

    score: int = Field(ge=0, le=10)
    comment: str | None = Field(default=None, max_length=2000)


def actor(who: Principal) -> str:
    """How a caller appears on a claim's timeline."""
    if who.role is Role.CUSTOMER:
        return f"customer:{who.customer}"
    return f"{who.role.value}:{who.person}" if who.person else who.role.value


def _visible(conn: Conn, who: Principal, claim: int, lock: bool = False) -> claims.Loaded:
    """The claim if the caller may see it: its customer, managers and admins."""
    if who.role not in (Role.CUSTOMER, *STAFF):
        raise ClaimRefused(403, "claims are for the customer, its managers and the executives")
    loaded = claims.load(conn, claim, lock)
    if who.role is Role.CUSTOMER and loaded.row["customer_id"] != who.customer:
        raise ClaimRefused(404, f"no claim {claim} visible to this token")
    return loaded


def _customer(conn: Conn, who: Principal, claim: int) -> claims.Loaded:
    """The claim, locked, for a step only its customer takes."""
    loaded = _visible(conn, who, claim, lock=True)
    if who.role is not Role.CUSTOMER:
        raise ClaimRefused(403, "only the customer who raised the claim takes this step")
    return loaded


def _owner(conn: Conn, who: Principal, claim: int) -> claims.Loaded:
    """The claim, locked, for a step its owning manager (or an admin) takes."""
    loaded = _visible(conn, who, claim, lock=True)
    if who.role is Role.CUSTOMER:
        raise ClaimRefused(403, "the manager who owns the claim takes this step")
    owner = loaded.row["manager_id"]
    if who.role is Role.MANAGER and owner is not None and who.person != owner:
        raise ClaimRefused(403, f"this claim is owned by {owner}: ask them, or take it over "
                                "with POST .../assign")
    return loaded


def _open_once(conn: Conn, who: Principal, key: str | None, body: ClaimIn) -> int:
    """Open the claim, or return the one this token's Idempotency-Key already opened."""
    request = json.dumps({"claim": body.text, "incident": body.incident}, sort_keys=True)
    if key:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{who.token_id}:{key}",))
        old = claims.query(conn, "SELECT request, response FROM idempotency_keys"
                                 " WHERE token_id = %s AND key = %s", (who.token_id, key)
                           ).fetchone()
        if old is not None:
            if old["request"] != request:
                raise ClaimRefused(422, "this Idempotency-Key was already used for another "
                                        "request; send a new key for each new claim")
            return int(old["response"]["claim"])
    claim = claims.open_claim(conn, who.customer or "", body.incident, body.text, actor(who),
                              datetime.now(UTC))
    if key:
        conn.execute("INSERT INTO idempotency_keys (token_id, key, request, status_code, response)"
                     " VALUES (%s, %s, %s, 201, %s)",
                     (who.token_id, key, request, Jsonb({"claim": claim})))
    return claim


def router(deps: Deps) -> APIRouter:
    """Register the claim routes."""
    return _routes(deps, deps.db, deps.who)


def _routes(deps: Deps, db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()

    def run(conn: Conn, claim: int, step: Any) -> dict[str, Any]:
        """Run one step in a transaction; refusals become 4xx answers."""
        try:
            with conn.transaction():
                step(datetime.now(UTC))
            return claims.shown(conn, claim)
        except ClaimRefused as exc:
            raise HTTPException(exc.status, exc.detail) from None

    @api.post("/api/v1/claims", status_code=201, response_model=models.Claim)
    def raise_claim(body: ClaimIn, conn: db, who: who_dep,
                    key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
                    = None) -> dict[str, Any]:
        """The customer says support failed; an investigation opens (once per Idempotency-Key)."""
        if who.role is not Role.CUSTOMER:
            raise HTTPException(403, "a claim is raised by the customer")
        try:
            with conn.transaction():
                claim = _open_once(conn, who, key, body)
        except ClaimRefused as exc:
            raise HTTPException(exc.status, exc.detail) from None
        return claims.shown(conn, claim)

    @api.get("/api/v1/claims", response_model=models.ClaimPage)
    def list_claims(conn: db, who: who_dep,
                    state: Annotated[str | None, Query(description="'open' or a claim state")]
                    = None, customer: str | None = None,
                    limit: Limit = 50,
                    cursor: Cursor = None) -> dict[str, Any]:
        """Claims, newest first; a customer sees its own, 'state=open' the unfinished ones."""
        if who.role not in (Role.CUSTOMER, *STAFF):
            raise HTTPException(403, "claims are for the customer, its managers and the "
                                     "executives")
        if who.role is Role.CUSTOMER:
            customer = who.customer
        where: list[str] = ["TRUE"]
        args: list[Any] = []
        if state == "open":
            where.append("state = ANY(%s)")
            args.append(sorted(s.value for s in OPEN_CLAIM_STATES))
        elif state is not None:
            if state not in set(ClaimState):
                raise HTTPException(422, f"state {state!r} is not 'open' or one of: "
                                         + ", ".join(s.value for s in ClaimState))
            where.append("state = %s")
            args.append(state)
        if customer is not None:
            where.append("customer_id = %s")
            args.append(customer)
        if cursor is not None:
            where.append("id < %s")
            args.append(cursor)
        rows = claims.query(conn, f"SELECT {claims.CLAIM_COLUMNS} FROM claims WHERE "
                               f"{' AND '.join(where)} ORDER BY id DESC LIMIT {limit + 1}",
                         args).fetchall()
        items = [claims.summary(r) for r in rows[:limit]]
        return {"items": items, "next": items[-1]["id"] if len(rows) > limit else None}

    @api.get("/api/v1/claims/{claim_id}", response_model=models.Claim)
    def get_claim(claim_id: int, conn: db, who: who_dep) -> dict[str, Any]:
        """One claim with its plan, timeline, notice and exit survey."""
        return run(conn, claim_id, lambda now: _visible(conn, who, claim_id))

    @api.post("/api/v1/claims/{claim_id}/assign", response_model=models.Claim)
    def assign(claim_id: int, body: AssignIn, conn: db, who: who_dep) -> dict[str, Any]:
        """A manager takes the investigation, or hands it to another manager."""
        def step(now: datetime) -> None:
            loaded = _visible(conn, who, claim_id, lock=True)
            if who.role is Role.CUSTOMER:
                raise ClaimRefused(403, "managers assign a claim")
            role = claims.query(conn, "SELECT role FROM technicians WHERE id = %s AND active",
                             (body.manager,)).fetchone()
            if role is None or role["role"] not in ("manager", "executive"):
                raise ClaimRefused(422, f"{body.manager!r} is not an active manager or "
                                        "executive of the fleet file")
            to = claims.decide(loaded, rules.Action.ASSIGN, now)
            claims.set_state(conn, claim_id, to, now, manager_id=body.manager)
            claims.record(conn, claim_id, now, actor(who), rules.Action.ASSIGN,
                          {"manager": body.manager, "before": loaded.row["manager_id"]})

        return run(conn, claim_id, step)

    @api.post("/api/v1/claims/{claim_id}/plan", response_model=models.Claim)
    def plan(claim_id: int, body: PlanIn, conn: db, who: who_dep) -> dict[str, Any]:
        """The owning manager presents an action plan (replacing an unanswered or rejected one)."""
        def step(now: datetime) -> None:
            loaded = _owner(conn, who, claim_id)
            items = [rules.Item(i.text, i.owner, i.due_at) for i in body.items]
            to = claims.decide(loaded, rules.Action.PLAN, now)
            if problem := rules.check_plan(items, now):
                raise ClaimRefused(422, problem)
            claims.check_owners(conn, items)
            number = loaded.row["plan"] + 1
            claims.save_plan(conn, claim_id, number, items)
            claims.set_state(conn, claim_id, to, now, plan=number)
            claims.record(conn, claim_id, now, actor(who), rules.Action.PLAN,
                          {"plan": number, "items": len(items),
                           "due": [i.due_at.isoformat() for i in items]})

        return run(conn, claim_id, step)

    def answer(claim_id: int, action: rules.Action, body: AnswerIn | None, conn: Conn,
               who: Principal) -> dict[str, Any]:
        def step(now: datetime) -> None:
            loaded = _customer(conn, who, claim_id)
            to = claims.decide(loaded, action, now)
            claims.set_state(conn, claim_id, to, now)
            claims.record(conn, claim_id, now, actor(who), action,
                          {"plan": loaded.row["plan"], "comment": body.comment if body else None,
                           "state": to.value})

        return run(conn, claim_id, step)

    @api.post("/api/v1/claims/{claim_id}/accept", response_model=models.Claim)
    def accept(claim_id: int, conn: db, who: who_dep,
               body: AnswerIn | None = None) -> dict[str, Any]:
        """The customer accepts the presented plan."""
        return answer(claim_id, rules.Action.ACCEPT, body, conn, who)

    @api.post("/api/v1/claims/{claim_id}/reject", response_model=models.Claim)
    def reject(claim_id: int, conn: db, who: who_dep,
               body: AnswerIn | None = None) -> dict[str, Any]:
        """The customer rejects the presented plan (this opens notice without penalty)."""
        return answer(claim_id, rules.Action.REJECT, body, conn, who)

    @api.post("/api/v1/claims/{claim_id}/items/{n}/done", response_model=models.Claim)
    def item_done(claim_id: int, n: int, conn: db, who: who_dep) -> dict[str, Any]:
        """The owning manager marks an item of the current plan done."""
        def step(now: datetime) -> None:
            loaded = _owner(conn, who, claim_id)
            to = claims.decide(loaded, rules.Action.ITEM_DONE, now, n)
            conn.execute("UPDATE claim_plan_items SET done_at = coalesce(done_at, %s)"
                         " WHERE claim_id = %s AND plan = %s AND n = %s",
                         (now, claim_id, loaded.row["plan"], n))
            claims.set_state(conn, claim_id, to, now)
            claims.record(conn, claim_id, now, actor(who), rules.Action.ITEM_DONE,
                          {"plan": loaded.row["plan"], "item": n, "state": to.value})

        return run(conn, claim_id, step)

    @api.post("/api/v1/claims/{claim_id}/notice", response_model=models.Claim)
    def notice(claim_id: int, conn: db, who: who_dep) -> dict[str, Any]:
        """The customer gives 30 days' notice without penalty (after a rejected or missed plan)."""
        def step(now: datetime) -> None:
            loaded = _customer(conn, who, claim_id)
            to = claims.decide(loaded, rules.Action.NOTICE, now)
            effective = rules.notice_effective(now)
            claims.set_state(conn, claim_id, to, now, notice_at=now, notice_effective=effective)
            claims.record(conn, claim_id, now, actor(who), rules.Action.NOTICE,
                          {"effective_at": effective.isoformat(),
                           "missed_items": rules.missed(loaded.claim.items, now),
                           "after": loaded.row["state"]})

        return run(conn, claim_id, step)

    @api.post("/api/v1/claims/{claim_id}/exit-survey", response_model=models.Claim)
    def exit_survey(claim_id: int, body: ExitSurveyIn, conn: db,
                    who: who_dep) -> dict[str, Any]:
        """The departing customer's score and words."""
        def step(now: datetime) -> None:
            loaded = _customer(conn, who, claim_id)
            to = claims.decide(loaded, rules.Action.EXIT_SURVEY, now)
            conn.execute("INSERT INTO exit_surveys (claim_id, score, comment, at)"
                         " VALUES (%s, %s, %s, %s)", (claim_id, body.score, body.comment, now))
            claims.set_state(conn, claim_id, to, now)
            claims.record(conn, claim_id, now, actor(who), rules.Action.EXIT_SURVEY,
                          {"score": body.score, "comment": body.comment})

        return run(conn, claim_id, step)

    return api
