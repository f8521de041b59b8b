"""Web Push subscriptions of staff: the server's public key, and each device's subscription.

A technician or manager signed in on a phone turns notifications on; the page subscribes
with the browser's PushManager against `GET /api/v1/push/key` and posts the subscription
here. Customers are refused: push is for staff, whose jobs and escalations cannot wait for
an email. Each subscription is checked (dispatcher/domain/push.py) before it is kept, and
a person keeps at most ten (the oldest goes). The sending is dispatcher/delivery.py's.
"""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response
from pydantic import BaseModel, Field

from dispatcher import views
from dispatcher.domain import push as rules
from dispatcher.http import models
from dispatcher.http.deps import MAX_ID, Deps
from dispatcher.store import push
from dispatcher.store.tokens import Principal
from schemas.states import Role

STAFF = (Role.TECHNICIAN, Role.MANAGER)


class KeysIn(BaseModel):
    """The subscription's keys, as PushSubscription.toJSON() gives them (base64url)."""

    p256dh: str = Field(max_length=200)  # 65 bytes: 87 characters
    auth: str = Field(max_length=100)  # 16 bytes: 22 characters


class SubscriptionIn(BaseModel):
    """A browser's PushSubscription JSON, and a label for the device."""

    endpoint: str = Field(max_length=4000)  # checked to 1,000 with a reason below
    keys: KeysIn
    expirationTime: float | None = None  # noqa: N815 - the Push API's own name; ignored
    device: str | None = Field(default=None, max_length=rules.DEVICE_MAX)


def staff(who: Principal) -> str:
    """The signed-in staff member's id, or a 403 that says push is for staff."""
    if who.role is Role.CUSTOMER:
        raise HTTPException(403, "push notifications are for staff (technicians and "
                                 "managers); customers follow their incidents on /status")
    if who.role not in STAFF or not who.person:
        raise HTTPException(403, "push notifications go to a person: sign in as a technician "
                                 "or manager on the device that should ring")
    return who.person


def shown(r: dict[str, Any]) -> dict[str, Any]:
    """The public shape of one subscription."""
    return {"id": r["id"], "endpoint": r["endpoint"], "device": r["device"],
            "created_at": views.ts(r["created_at"]),
            "last_success_at": views.ts(r["last_success_at"]),
            "last_failure": r["last_failure"]}


def router(deps: Deps) -> APIRouter:
    """The push routes."""
    return _routes(deps, deps.db, deps.who)


def _routes(deps: Deps, db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()
    Sid = Annotated[int, Path(ge=1, le=MAX_ID)]

    @api.get("/api/v1/push/key", response_model=models.PushKey)
    def public_key(conn: db, who: who_dep) -> dict[str, Any]:
        """The VAPID public key to subscribe with (made on the first start)."""
        staff(who)
        return {"public_key": push.ensure_key(conn, datetime.now(UTC)).public_key}

    @api.post("/api/v1/push/subscriptions", response_model=models.PushSubscription,
              status_code=201)
    def subscribe(body: SubscriptionIn, conn: db, who: who_dep,
                  response: Response) -> dict[str, Any]:
        """Keep this device's subscription; the same endpoint again updates its keys (200)."""
        person = staff(who)
        try:
            endpoint = rules.check_endpoint(body.endpoint, deps.push.allow_http_localhost)
            rules.check_keys(body.keys.p256dh, body.keys.auth)
        except rules.Refused as exc:
            raise HTTPException(422, f"bad push subscription: {exc}") from None
        device = (body.device or "").strip() or None
        with conn.transaction():
            row, created = push.subscribe(conn, person, endpoint, body.keys.p256dh,
                                          body.keys.auth, device, datetime.now(UTC))
        if not created:
            response.status_code = 200
        return shown(row)

    @api.get("/api/v1/push/subscriptions", response_model=models.PushSubscriptionPage)
    def list_subscriptions(conn: db, who: who_dep) -> dict[str, Any]:
        """The signed-in person's subscriptions, newest first (at most ten)."""
        return {"items": [shown(r) for r in push.subscriptions(conn, staff(who))],
                "next": None}

    @api.delete("/api/v1/push/subscriptions/{subscription_id}", status_code=204,
                response_class=Response)
    def unsubscribe(subscription_id: Sid, conn: db, who: who_dep) -> Response:
        """Stop pushing to one of one's devices."""
        if not push.unsubscribe(conn, staff(who), subscription_id):
            raise HTTPException(404, f"no push subscription {subscription_id} of yours; "
                                     "GET /api/v1/push/subscriptions lists them")
        return Response(status_code=204)

    return api
