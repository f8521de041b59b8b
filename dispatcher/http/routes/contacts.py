"""Who gets told: the customer's own contacts (email addresses and one webhook), managed on
/status, and a test message through the outbox whose outcome the notification log records.

`GET /api/v1/contacts` (the customer's own; a manager or admin names `?customer=`),
`POST /api/v1/contacts` `{channel, address}` (the same address again changes nothing; a new
webhook replaces the old one), `POST /api/v1/contacts/{id}/remove`, `POST
/api/v1/contacts/{id}/test`. Only the customer changes its contacts.

No `from __future__ import annotations` here: FastAPI reads the route annotations at runtime.
"""

import ipaddress
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from dispatcher import views
from dispatcher.http import models
from dispatcher.http.deps import Deps
from dispatcher.store import contacts
from dispatcher.store.tokens import Principal
from schemas.states import Role

MAX_EMAIL = 254  # RFC 5321's limit on a forward path
MAX_URL = 2000  # what every browser and proxy carries
_EMAIL = re.compile(r"^[^@\s<>,;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_LOCAL = frozenset({"localhost", "127.0.0.1", "::1"})
TEST_EVERY = timedelta(seconds=10)  # one test per contact this often: a button, not a pager


class ContactIn(BaseModel):
    """A contact to add: an email address, or the webhook incident notifications are posted
    to (JSON)."""

    model_config = ConfigDict(extra="forbid")
    channel: Literal["email", "webhook"]
    address: str = Field(min_length=3, max_length=MAX_URL)


def check_email(address: str) -> str:
    """The address, trimmed and lowercased, or a 422 that says what is wrong."""
    a = address.strip().lower()
    if len(a) > MAX_EMAIL or not _EMAIL.match(a):
        raise HTTPException(422, f"not an email address: {address[:80]!r}; write it as "
                                 "name@example.com (at most 254 characters)")
    return a


def check_webhook(address: str, local_ok: bool) -> str:
    """The URL, or a 422 that says what is wrong (https only; http only to this machine when
    the server allows it; no user or password in it)."""
    url = address.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 -- a bad port raises here
    except ValueError:
        raise HTTPException(422, "not a URL: write it as https://host/path") from None
    if parts.username is not None or parts.password is not None:
        raise HTTPException(422, "the webhook URL holds a user or password: remove it "
                                 "(put a secret token in the path instead)")
    if not host or parts.scheme not in ("https", "http") or any(c.isspace() for c in url):
        raise HTTPException(422, "not a web address: write it as https://host/path")
    if _internal(host) and not (local_ok and host in _LOCAL):
        raise HTTPException(422, "the webhook names a local or private address: use your "
                                 "service's public https URL")
    if parts.scheme == "http" and not (local_ok and host in _LOCAL):
        raise HTTPException(422, "the webhook must use https (notifications carry your "
                                 "incidents): write https://" + host + (parts.path or "/"))
    return url


def _internal(host: str) -> bool:
    """Whether a host names this machine or a private network by itself (a name that only
    resolves to one is not caught here: the delivery worker's network policy is)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified


def _shown(r: dict[str, Any]) -> dict[str, Any]:
    test = None
    if r["test_id"] is not None:
        test = {"notification": r["test_id"], "state": r["test_state"],
                "outcome": r["test_outcome"], "status_code": r["test_status_code"],
                "error": r["test_delivery_error"] or r["test_error"],
                "at": views.ts(r["test_at"]), "done_at": views.ts(r["test_done_at"])}
    return {"id": r["id"], "channel": r["channel"], "address": r["address"],
            "added_at": views.ts(r["added_at"]), "added_by": r["added_by"], "last_test": test}


def _own(who: Principal) -> str:
    if who.role is not Role.CUSTOMER or not who.customer:
        raise HTTPException(403, "only the customer's own people change its contacts")
    return who.customer


def router(deps: Deps) -> APIRouter:
    """The contacts routes."""
    return _routes(deps, deps.db, deps.who)


def _routes(deps: Deps, db: Any, who_dep: Any) -> APIRouter:
    api = APIRouter()

    def found(conn: Any, customer: str, contact: int) -> dict[str, Any]:
        row = contacts.one(conn, customer, contact)
        if row is None:
            raise HTTPException(404, f"no contact {contact} of yours: GET /api/v1/contacts "
                                     "lists them")
        return row

    @api.get("/api/v1/contacts", response_model=models.ContactPage)
    def list_contacts(conn: db, who: who_dep, customer: str | None = None) -> dict[str, Any]:
        """The customer's contacts, each with its latest test (a manager names ?customer=)."""
        if who.role is Role.CUSTOMER:
            customer = who.customer
        elif who.role not in (Role.MANAGER, Role.ADMIN):
            raise HTTPException(403, "contacts are the customer's, and managers' to read")
        elif not customer:
            raise HTTPException(422, "name the customer: ?customer=<id>")
        return {"items": [_shown(r) for r in contacts.listed(conn, str(customer))],
                "next": None}

    @api.post("/api/v1/contacts", response_model=models.Contact)
    def add_contact(body: ContactIn, conn: db, who: who_dep) -> dict[str, Any]:
        """Add an email address or set the webhook (the same one again changes nothing)."""
        customer = _own(who)
        address = (check_email(body.address) if body.channel == "email"
                   else check_webhook(body.address, deps.local_webhooks))
        with conn.transaction():
            conn.execute("SELECT 1 FROM customers WHERE id = %s FOR UPDATE", (customer,))
            known = [r for r in contacts.listed(conn, customer)
                     if r["channel"] == body.channel and (body.channel == "webhook"
                                                          or r["address"] == address)]
            if not known and contacts.count(conn, customer) >= contacts.MAX_PER_CUSTOMER:
                raise HTTPException(409, f"you have {contacts.MAX_PER_CUSTOMER} contacts "
                                         "already: remove one first")
            contact = contacts.add(conn, customer, body.channel, address, who.actor,
                                   datetime.now(UTC))
        return _shown(found(conn, customer, contact))

    @api.post("/api/v1/contacts/{contact_id}/remove", response_model=models.ContactPage)
    def remove_contact(contact_id: int, conn: db, who: who_dep) -> dict[str, Any]:
        """Remove a contact; answers the contacts left."""
        customer = _own(who)
        if not contacts.remove(conn, customer, contact_id):
            raise HTTPException(404, f"no contact {contact_id} of yours: GET /api/v1/contacts "
                                     "lists them")
        return {"items": [_shown(r) for r in contacts.listed(conn, customer)], "next": None}

    @api.post("/api/v1/contacts/{contact_id}/test", response_model=models.Contact,
              status_code=202)
    def test_contact(contact_id: int, conn: db, who: who_dep) -> dict[str, Any]:
        """Send a test notification through the outbox; its outcome shows in last_test
        (poll GET /api/v1/contacts)."""
        customer, now = _own(who), datetime.now(UTC)
        with conn.transaction():
            conn.execute("SELECT 1 FROM contacts WHERE id = %s FOR UPDATE", (contact_id,))
            row = found(conn, customer, contact_id)
            if row["test_at"] is not None and now - row["test_at"] < TEST_EVERY:
                wait = int((TEST_EVERY - (now - row["test_at"])).total_seconds()) + 1
                raise HTTPException(429, f"a test was sent to this contact just now: wait "
                                         f"{wait} s for its outcome, then test again",
                                    headers={"Retry-After": str(wait)})
            contacts.send_test(conn, customer, row, who.actor, now)
        return _shown(found(conn, customer, contact_id))

    return api
