"""What a route of the permission matrix needs before one caller calls it: a fresh resource
of acme's (an incident in the right state and its job, a claim, a facility incident, a
proactive job, a credit), made for every call, so one caller's change of state never shapes
the next caller's answer.

A setup returns the route's path parameters by their names in the route's template
(`incident_id`, `job_id`, `claim_id`, `n`, `facility_id`), plus `listed`: the id a list
route must show to everyone it answers but the other customer.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from dispatcher.store import passkeys, tokens
from schemas.states import Role
from tests.dispatcher import soft_passkey
from tests.web.conftest import Fleet, OpenIncident

Conn = psycopg.Connection[tuple[Any, ...]]
Ids = dict[str, int]
MISSING = 987_654_321  # an id no row of this module's database reaches


class Tracebacks(logging.Handler):
    """Tells when the server has printed the traceback of a 500 (added after uvicorn's own
    handler). Python 3.11's traceback module parses source with ast for its ^^^ marks, and so
    does pytest for a failing test; ast's recursion counter is shared by threads (CPython
    gh-106905), so both at once can raise SystemError inside pytest. A call answered 500
    waits for the server's print first."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.printed = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        """Note that a traceback went out."""
        if record.exc_info:
            self.printed.set()

    def wait(self) -> None:
        """Until the server has printed the traceback of the 500 just answered."""
        assert self.printed.wait(10), "the server answered 500 and logged no traceback"
        self.printed.clear()


@dataclass(frozen=True)
class World:
    """The running server and the module's database, as a setup sees them."""

    base_url: str
    db: Conn
    fleet: Fleet
    open_incident: OpenIncident
    tracebacks: Tracebacks


Setup = Callable[[World], Ids]


def later(hours: float = 48) -> str:
    """An RFC 3339 time some hours from now (a plan or review item's due time)."""
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def review_body() -> dict[str, Any]:
    """A breach review as a manager writes it."""
    return {"cause": "No spare of this disk model on site; it came from another site.",
            "items": [{"text": "Keep two spares at iad1", "owner": "t-maria",
                       "due_at": later()}]}


def nothing(w: World) -> Ids:
    """A route that names no resource."""
    return {}


def acme_session(w: World) -> Ids:
    """A session of one of acme's people (signed in by a link)."""
    sid, _ = tokens.start_session(w.db, Role.CUSTOMER, "acme", None, datetime.now(UTC),
                                  timedelta(hours=1), timedelta(hours=2), "test", "127.0.0.1",
                                  "ops@acme.example")
    return {"session_id": sid}


def ana_reachable(w: World) -> Ids:
    """t-ana has an email address, so a sign-in link can be sent to her."""
    w.db.execute("INSERT INTO contacts (person_id, channel, address) VALUES"
                 " ('t-ana', 'email', 'ana@example.net') ON CONFLICT DO NOTHING")
    return {}


#: What a setup built for a request's body (a signed passkey answer), by the id it returned.
MADE: dict[int, Any] = {}


@dataclass(frozen=True)
class Made:
    """A body value a setup built, found in MADE by the setup's id `key`."""

    key: str


def ana_registration(w: World) -> Ids:
    """A registration ceremony t-ana started, answered by a software authenticator."""
    challenge = passkeys.new_challenge(w.db, "register", "t-ana", "test", datetime.now(UTC))
    assert challenge is not None
    n = len(MADE) + 1
    MADE[n] = soft_passkey.registration(challenge, w.base_url)
    return {"registration": n}


def ana_passkey(w: World) -> Ids:
    """A passkey of t-ana's (its key is never used here: removing it needs none)."""
    row = w.db.execute(
        "INSERT INTO passkeys (person_id, credential_id, public_key, name, created_at)"
        " VALUES ('t-ana', %s, '\\x00', 'test key', now()) RETURNING id",
        (uuid.uuid4().bytes,)).fetchone()
    assert row is not None
    return {"passkey_id": int(row[0])}


def push_device(w: World) -> Ids:
    """A new device's push subscription (a fresh endpoint and keys), for a body."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from dispatcher.domain.push import b64url_encode

    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    n = len(MADE) + 1
    MADE[n] = {"endpoint": f"https://push.example.com/send/{uuid.uuid4().hex}",
               "keys": {"p256dh": b64url_encode(point), "auth": b64url_encode(bytes(16))},
               "expirationTime": None, "device": "Pixel 8"}
    return {"push_device": n}


def ana_push_subscription(w: World) -> Ids:
    """A push subscription of t-ana's phone (its keys are never used here)."""
    row = w.db.execute(
        "INSERT INTO push_subscriptions (person_id, endpoint, p256dh, auth, device, created_at,"
        " updated_at) VALUES ('t-ana', %s, 'x', 'y', 'phone', now(), now()) RETURNING id",
        (f"https://push.example.com/send/{uuid.uuid4().hex}",)).fetchone()
    assert row is not None
    return {"subscription_id": int(row[0])}


def escalated(w: World) -> Ids:
    """A dispatched acme incident escalated to its site manager, t-maria."""
    ids = dispatched(w)
    w.db.execute("INSERT INTO incident_events (incident_id, at, actor, kind, detail) VALUES"
                 " (%s, now(), 'dispatcher', 'escalated', '{\"step\": \"ack_timeout\","
                 " \"to\": \"t-maria\", \"role\": \"manager\", \"reason\": \"late\"}')",
                 (ids["incident_id"],))
    return ids


def dispatched(w: World) -> Ids:
    """An open acme incident (web-01) and its job, dispatched to t-ana."""
    opened = w.open_incident()
    assert opened.job is not None
    return {"incident_id": opened.incident, "job_id": opened.job, "listed": opened.incident}


def reassignable(w: World) -> Ids:
    """A dispatched acme incident and t-cy, a third disk technician to reassign it to (not
    t-bob: the matrix's other technician must keep seeing no jobs)."""
    w.db.execute("INSERT INTO technicians (id, name, site_id, role, skills) VALUES"
                 " ('t-cy', 'Cy', 'iad1', 'technician', '{disk}') ON CONFLICT DO NOTHING")
    return dispatched(w)


def acknowledged(w: World) -> Ids:
    """An acme incident whose job t-ana has acknowledged (so the part can be replaced)."""
    opened = w.open_incident(state="acknowledged")
    assert opened.job is not None
    return {"incident_id": opened.incident, "job_id": opened.job}


def paused(w: World) -> Ids:
    """An acme incident whose clock the site manager paused through the API."""
    ids = dispatched(w)
    r = httpx.post(f"{w.base_url}/api/v1/incidents/{ids['incident_id']}/pause",
                   headers={"Authorization": f"Bearer {w.fleet.manager}"},
                   json={"reason": "customer_maintenance_window"})
    assert r.status_code == 200, r.text
    return ids


def cage_asked(w: World) -> Ids:
    """An open acme incident whose contract asks the customer for cage access."""
    w.db.execute("UPDATE customers SET cage_access = 'ask' WHERE id = 'acme'")
    return dispatched(w)


def acme_contact(w: World) -> Ids:
    """One of acme's own contacts (an email address it added on /status)."""
    address = f"ops-{uuid.uuid4().hex[:8]}@acme.example"
    row = w.db.execute(
        "INSERT INTO contacts (person_id, channel, address, customer_id, added_at)"
        " VALUES (%s, 'email', %s, 'acme', now()) RETURNING id",
        (f"customer:acme:email:{address}", address)).fetchone()
    assert row is not None
    return {"contact_id": int(row[0])}


def photo(w: World) -> Ids:
    """A photo t-ana took on her job of an acme incident (bytes need not be a real JPEG)."""
    ids = dispatched(w)
    row = w.db.execute(
        "INSERT INTO job_photos (incident_id, job_id, author, taken_at, width, height, image,"
        " thumb) VALUES (%s, %s, 'technician:t-ana', now(), 1, 1, '\\xffd8', '\\xffd8')"
        " RETURNING id", (ids["incident_id"], ids["job_id"])).fetchone()
    assert row is not None
    return {**ids, "photo_id": int(row[0])}


def pause_asked(w: World) -> Ids:
    """An acme incident whose technician asked the site manager for a pause (waiting)."""
    ids = dispatched(w)
    r = httpx.post(f"{w.base_url}/api/v1/jobs/{ids['job_id']}/pause-request",
                   headers={"Authorization": f"Bearer {w.fleet.tech}"},
                   json={"reason": "customer_denied_access"})
    assert r.status_code == 200, r.text
    request = r.json()["card"]["pause_request"]["id"]
    return {**ids, "request_id": int(request)}


def breached(w: World) -> Ids:
    """An acme incident still open ten minutes past its deadline."""
    return {"incident_id": w.open_incident(minutes_left=-10).incident}


def reviewed(w: World) -> Ids:
    """A breached acme incident whose review the site manager has written."""
    ids = breached(w)
    r = httpx.post(f"{w.base_url}/api/v1/incidents/{ids['incident_id']}/review",
                   headers={"Authorization": f"Bearer {w.fleet.manager}"}, json=review_body())
    assert r.status_code == 201, r.text
    return ids


def verified(w: World) -> Ids:
    """An acme incident whose fix telemetry verified: the customer may close it."""
    i = w.open_incident(state="verified").incident
    w.db.execute("UPDATE incidents SET verified_at = now() WHERE id = %s", (i,))
    return {"incident_id": i}


def closed(w: World) -> Ids:
    """A closed acme incident: the customer may answer its survey."""
    i = w.open_incident(state="closed").incident
    w.db.execute("UPDATE incidents SET verified_at = now(), closed_at = now() WHERE id = %s",
                 (i,))
    return {"incident_id": i}


def credited(w: World) -> Ids:
    """A closed, late acme incident with its credit issued."""
    i = closed(w)["incident_id"]
    row = w.db.execute(
        "INSERT INTO credits (incident_id, customer_id, amount, currency, percent, periods,"
        " late_seconds, policy, issued_at) VALUES (%s, 'acme', 22.50, 'USD', 5, 1, 600,"
        " '{}', now()) RETURNING id", (i,)).fetchone()
    assert row is not None
    return {"incident_id": i, "listed": int(row[0])}


def claim(state: str) -> Setup:
    """A claim of acme's in `state`, owned by t-maria, with a one-item plan past investigating."""

    def make(w: World) -> Ids:
        now = datetime.now(UTC)
        plan = 0 if state == "investigating" else 1
        row = w.db.execute(
            "INSERT INTO claims (customer_id, text, state, manager_id, plan, opened_at,"
            " updated_at) VALUES ('acme', 'slow disk swap', %s, 't-maria', %s, %s, %s)"
            " RETURNING id", (state, plan, now, now)).fetchone()
        assert row is not None
        c = int(row[0])
        if plan:
            w.db.execute("INSERT INTO claim_plan_items (claim_id, plan, n, text, owner, due_at)"
                         " VALUES (%s, 1, 1, 'spares on site', 't-maria', %s)",
                         (c, now + timedelta(days=2)))
        if state == "notice_given":
            w.db.execute("UPDATE claims SET notice_at = %s, notice_effective = %s WHERE id = %s",
                         (now, now + timedelta(days=30), c))
        return {"claim_id": c, "n": 1, "listed": c}

    make.__doc__ = f"A claim of acme's, {state}."
    return make


def facility(w: World) -> Ids:
    """A rack that went down with web-01 (acme's) alone in it; resolved, so racks never clash
    with the one open facility incident a rack may have."""
    now = datetime.now(UTC)
    row = w.db.execute(
        "INSERT INTO facility_incidents (site_id, room, rack, cause, state, detected_at,"
        " deadline, resolved_at, rack_hosts) VALUES ('iad1', 'A', %s, 'power', 'resolved', %s,"
        " %s, %s, 1) RETURNING id",
        (f"r-{uuid.uuid4().hex[:8]}", now, now + timedelta(hours=1), now)).fetchone()
    assert row is not None
    f = int(row[0])
    w.db.execute("INSERT INTO facility_incident_hosts (facility_id, host_id, customer_id,"
                 " last_message) VALUES (%s, 'web-01', 'acme', %s)", (f, now))
    return {"facility_id": f, "listed": f}


def proactive(w: World) -> Ids:
    """A prediction on web-01 (acme) and its proactive job, planned for t-ana."""
    now = datetime.now(UTC)
    row = w.db.execute(
        "INSERT INTO predictions (host_id, site_id, customer_id, component, kind, prediction,"
        " rule, slot, detected_at, last_seen) VALUES ('web-01', 'iad1', 'acme', %s, 'disk',"
        " 'smart_counter_rising', 'smart_baseline', 'sdb', %s, %s) RETURNING id",
        (f"disk:{uuid.uuid4().hex[:8]}", now, now)).fetchone()
    assert row is not None
    job = w.db.execute("INSERT INTO proactive_jobs (prediction_id, site_id, technician_id,"
                       " planned_at) VALUES (%s, 'iad1', 't-ana', %s) RETURNING id",
                       (row[0], now)).fetchone()
    assert job is not None
    return {"job_id": int(job[0]), "listed": int(row[0])}


#: Two windows a day that overlap by half, so every hour of every day lies in one of them.
ALWAYS_OPEN = ('[{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00",'
               ' "end": "24:00", "timezone": "UTC"}, {"days": ["mon", "tue", "wed", "thu",'
               ' "fri", "sat", "sun"], "start": "12:00", "end": "12:00", "timezone": "UTC"}]')


def planned(w: World) -> Ids:
    """Acme's proactive job, with maintenance windows a move to any later hour fits into."""
    ids = proactive(w)
    w.db.execute("INSERT INTO maintenance_windows (customer_id, windows, updated_at, updated_by)"
                 " VALUES ('acme', %s, now(), 'test') ON CONFLICT (customer_id) DO UPDATE SET"
                 " windows = EXCLUDED.windows", (ALWAYS_OPEN,))
    return {"job_id": ids["job_id"], "listed": ids["job_id"]}


def fill(template: Any, ids: Ids) -> Any:
    """A body template with each "{name}" string replaced by that id, "{later}" by a time."""
    if isinstance(template, dict):
        return {k: fill(v, ids) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, ids) for v in template]
    if isinstance(template, Made):
        return MADE[ids[template.key]]
    if template == "{later}":
        return later()
    if isinstance(template, str) and template.startswith("{") and template.endswith("}"):
        return ids[template[1:-1]]
    return template


def names_ids(template: Any) -> bool:
    """Whether a body template names a resource by id ("{later}" is a time, not an id)."""
    if isinstance(template, dict):
        return any(names_ids(v) for v in template.values())
    if isinstance(template, list):
        return any(names_ids(v) for v in template)
    return isinstance(template, str) and template.startswith("{") and template != "{later}"


def missing(ids: Ids) -> Ids:
    """The same parameters, every id one that exists nowhere."""
    return {k: v if k == "n" else MISSING for k, v in ids.items()}
