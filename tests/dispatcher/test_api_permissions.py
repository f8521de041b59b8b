"""The permission matrix of every HTTP route, generated from the app's own routes, and bad
requests answered with a 4xx and a readable detail, never a 500. Real HTTP server.

Every (method, path) of `create_app` must have one rule in RULES (or be listed in PUBLIC
with why): a new route without one fails the suite, and so does a rule whose route is gone.
Each rule gives the exact status of each caller on a fresh resource of acme's:

- 401 without a token; 403 for a role the route is not for (the same answer whether the
  resource exists or not); 404 for a customer asking about another customer's resource,
  so that existence does not leak (test_other_customer_cannot_tell_what_exists checks it);
- a 4xx answer always carries a readable `detail`; a 500 is never right.

A cell the app answers wrongly in a way that looks like a security bug is marked in the
rule's `bugs` (by caller) or `leak` (the existence check): an xfail, strict, so it fails the
day the app is fixed and the mark goes too. The rules are never bent to fit the app.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.routing import iter_route_contexts
from PIL import Image

from dispatcher.http.app import create_app
from dispatcher.store import tokens
from schemas.states import Role
from tests.dispatcher import permission_setups as s
from tests.web.conftest import Fleet, OpenIncident

CALLERS = ("anonymous", "owner", "other_customer", "technician", "other_technician",
           "manager", "admin")
Expect = tuple[int, int, int, int, int, int, int]  # one status per caller, in CALLERS' order


@pytest.fixture(scope="module")
def who(db: psycopg.Connection[tuple[Any, ...]], fleet: Fleet) -> dict[str, str | None]:
    """A token per caller: owner is acme, other_customer globex; t-ana is the technician
    every job is assigned to, t-bob another one; t-maria manages the site."""
    db.execute("INSERT INTO technicians (id, name, site_id, role, skills) VALUES"
               " ('t-bob', 'Bob', 'iad1', 'technician', '{disk}') ON CONFLICT DO NOTHING")
    return {"anonymous": None, "owner": fleet.acme, "other_customer": fleet.globex,
            "technician": fleet.tech, "other_technician": tokens.create(
                db, Role.TECHNICIAN, None, "t-bob"),
            "manager": fleet.manager, "admin": tokens.create(db, Role.ADMIN, None, None)}


def call(base_url: str, token: str | None, method: str, path: str,
         **kw: Any) -> httpx.Response:
    """One request, with the token as a bearer when there is one."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, base_url + path, headers=headers, **kw)


@dataclass(frozen=True)
class Rule:
    """Who gets which status on one route, and what a call of it needs."""

    expect: Expect
    needs: s.Setup = s.nothing  # the fresh resource the path names, made per call
    query: str = ""
    body: Any = None  # a template for fill(): "{incident_id}" becomes that id
    bugs: Mapping[str, str] = field(default_factory=dict)  # caller -> the bug: an xfail
    leak: str = ""  # the bug that lets another customer tell acme's resource exists: an xfail
    stream: bool = False  # an event stream: only the status is read
    listed: bool = False  # a list: the fresh resource shown to all it answers, bar globex
    content: bytes | None = None  # a raw body (a photo's bytes) instead of JSON


# Columns:                anon  own other tech tech2  mgr admin
CUSTOMER_STEP: Expect = (401, 200, 404, 403, 403, 403, 403)  # the incident's customer alone
JOB_ACTION: Expect = (401, 403, 403, 200, 403, 403, 403)  # the assigned technician alone
CLAIM_STAFF: Expect = (401, 403, 404, 403, 403, 200, 200)  # the owning manager, an admin
STAFF_ONLY: Expect = (401, 403, 403, 200, 200, 200, 200)
MANAGERS: Expect = (401, 403, 403, 403, 403, 200, 200)
EVERYONE: Expect = (401, 200, 200, 200, 200, 200, 200)  # lists scoped to the customer's own
PROACTIVE_ACTION: Expect = (401, 403, 403, 200, 403, 200, 403)  # its technician, site manager
PAUSERS: Expect = (401, 200, 404, 403, 403, 200, 403)  # the customer, a manager
PAUSE = {"reason": "customer_denied_access"}
MANAGERS_ACCEPT: Expect = (401, 403, 403, 403, 403, 202, 202)
PEOPLE_STAFF: Expect = (401, 403, 403, 200, 200, 200, 403)  # a technician or manager, as self
MANAGER_PERSON: Expect = (401, 403, 403, 403, 403, 200, 403)  # a manager, as self

def _tiny_jpeg() -> bytes:
    """An 8x8 grey JPEG, the smallest photo the card takes."""
    out = io.BytesIO()
    Image.new("L", (8, 8), 128).save(out, "JPEG")
    return out.getvalue()


TINY_JPEG = _tiny_jpeg()

RULES: dict[str, Rule] = {
    # incidents and their jobs
    "GET /api/v1/incidents": Rule(EVERYONE, s.dispatched, "?limit=200", listed=True),
    "GET /api/v1/incidents/{incident_id}": Rule((401, 200, 404, 200, 200, 200, 200),
                                                s.dispatched),
    "GET /api/v1/jobs": Rule(STAFF_ONLY, s.dispatched, "?mine=true"),
    "POST /api/v1/jobs/{job_id}/acknowledge": Rule(JOB_ACTION, s.dispatched),
    "POST /api/v1/jobs/{job_id}/decline": Rule(JOB_ACTION, s.dispatched,
                                               body={"reason": "stuck at another site"}),
    "POST /api/v1/jobs/{job_id}/on-site": Rule(JOB_ACTION, s.dispatched),
    "POST /api/v1/jobs/{job_id}/replaced": Rule(JOB_ACTION, s.acknowledged,
                                                body={"serial": "ZA9NEW01"}),
    # the job card: notes and photos by the technician or the site manager, a pause request
    # by the technician alone, the requests' list and refusal by managers, photos for staff
    "POST /api/v1/jobs/{job_id}/notes": Rule(PROACTIVE_ACTION, s.dispatched,
                                             body={"text": "the caddy latch was broken"}),
    "POST /api/v1/jobs/{job_id}/photos": Rule((401, 403, 403, 201, 403, 201, 403),
                                              s.dispatched, content=TINY_JPEG),
    "POST /api/v1/jobs/{job_id}/pause-request": Rule(JOB_ACTION, s.dispatched, body=PAUSE),
    "GET /api/v1/photos/{photo_id}": Rule((401, 403, 403, 200, 403, 200, 200), s.photo),
    "GET /api/v1/photos": Rule(MANAGERS, s.photo),
    "GET /api/v1/pause-requests": Rule(MANAGERS, s.pause_asked),
    "POST /api/v1/pause-requests/{request_id}/refuse": Rule(
        (401, 403, 403, 403, 403, 200, 403), s.pause_asked,
        body={"answer": "the customer opens the cage in five minutes"}),
    "POST /api/v1/incidents/{incident_id}/pause": Rule(PAUSERS, s.dispatched, body=PAUSE),
    "POST /api/v1/incidents/{incident_id}/resume": Rule(PAUSERS, s.paused),
    "POST /api/v1/incidents/{incident_id}/pause-request": Rule(
        (401, 403, 403, 202, 403, 403, 403), s.dispatched, body=PAUSE),
    "POST /api/v1/incidents/{incident_id}/confirm": Rule(CUSTOMER_STEP, s.verified),
    "POST /api/v1/incidents/{incident_id}/survey": Rule(CUSTOMER_STEP, s.closed,
                                                        body={"score": 9, "comment": "quick"}),
    # customer self-service on /status: the evidence's readings, cage access, contacts
    "GET /api/v1/incidents/{incident_id}/readings": Rule((401, 200, 404, 200, 200, 200, 200),
                                                         s.dispatched, "?hours=6"),
    "POST /api/v1/incidents/{incident_id}/cage-access": Rule(CUSTOMER_STEP, s.cage_asked,
                                                             body={"decision": "grant"}),
    "GET /api/v1/contacts": Rule((401, 200, 200, 403, 403, 200, 200), query="?customer=acme"),
    "POST /api/v1/contacts": Rule((401, 200, 200, 403, 403, 403, 403),
                                  body={"channel": "email", "address": "ops@acme.example"}),
    "POST /api/v1/contacts/{contact_id}/remove": Rule(CUSTOMER_STEP, s.acme_contact),
    "POST /api/v1/contacts/{contact_id}/test": Rule((401, 202, 404, 403, 403, 403, 403),
                                                    s.acme_contact),
    "GET /api/v1/credits": Rule((401, 200, 200, 403, 403, 403, 200), s.credited, listed=True),
    "GET /api/v1/stream": Rule(EVERYONE, stream=True),
    # breach reviews and NPS
    "POST /api/v1/incidents/{incident_id}/review": Rule(
        (401, 403, 403, 403, 403, 201, 201), s.breached, body=s.review_body()),
    "PATCH /api/v1/incidents/{incident_id}/review": Rule(
        MANAGERS, s.reviewed, body={"cause": "The spare was at the wrong site."}),
    "GET /api/v1/reviews/overdue": Rule(MANAGERS),
    "GET /api/v1/nps": Rule((401, 200, 200, 403, 403, 200, 200)),
    # the managers' board and figures (a manager sees the sites they manage, an admin all)
    "GET /api/v1/figures": Rule(MANAGERS),
    "GET /api/v1/figures.csv": Rule(MANAGERS),
    "GET /api/v1/foreseen-breaches": Rule(MANAGERS),
    "GET /api/v1/incidents/{incident_id}/candidates": Rule(MANAGERS, s.dispatched),
    "POST /api/v1/incidents/{incident_id}/reassign": Rule(MANAGERS, s.reassignable,
                                                          body={"technician": "t-cy"}),
    # claims: another customer naming acme's incident in a new claim gets 422 "not one of
    # your incidents", as it does for an incident that does not exist
    "POST /api/v1/claims": Rule((401, 201, 422, 403, 403, 403, 403), s.dispatched,
                                body={"incident": "{incident_id}", "text": "too slow"}),
    "GET /api/v1/claims": Rule((401, 200, 200, 403, 403, 200, 200), s.claim("investigating"),
                               "?limit=200", listed=True),
    "GET /api/v1/claims/{claim_id}": Rule((401, 200, 404, 403, 403, 200, 200),
                                          s.claim("investigating")),
    "POST /api/v1/claims/{claim_id}/assign": Rule(CLAIM_STAFF, s.claim("investigating"),
                                                  body={"manager": "t-maria"}),
    "POST /api/v1/claims/{claim_id}/plan": Rule(
        CLAIM_STAFF, s.claim("investigating"),
        body={"items": [{"text": "Two spares on site", "owner": "t-maria",
                         "due_at": "{later}"}]}),
    "POST /api/v1/claims/{claim_id}/accept": Rule(CUSTOMER_STEP, s.claim("plan_presented")),
    "POST /api/v1/claims/{claim_id}/reject": Rule(CUSTOMER_STEP, s.claim("plan_presented"),
                                                  body={"comment": "not enough"}),
    "POST /api/v1/claims/{claim_id}/items/{n}/done": Rule(
        CLAIM_STAFF, s.claim("plan_accepted")),
    "POST /api/v1/claims/{claim_id}/notice": Rule(CUSTOMER_STEP, s.claim("plan_rejected")),
    "POST /api/v1/claims/{claim_id}/exit-survey": Rule(CUSTOMER_STEP, s.claim("notice_given"),
                                                       body={"score": 2, "comment": "slow"}),
    # stock, facility incidents, predictions, ingest, notifications, proactive jobs
    "GET /api/v1/spares": Rule(MANAGERS),
    "GET /api/v1/facility-incidents": Rule(EVERYONE, s.facility, "?limit=200", listed=True),
    "GET /api/v1/facility-incidents/{facility_id}": Rule((401, 200, 404, 200, 200, 200, 200),
                                                         s.facility),
    "GET /api/v1/predictions": Rule(EVERYONE, s.proactive, "?limit=200", listed=True),
    "GET /api/v1/ingest": Rule(STAFF_ONLY),
    "GET /api/v1/notifications": Rule(STAFF_ONLY),
    "GET /api/v1/proactive-jobs": Rule(STAFF_ONLY, s.proactive),
    "POST /api/v1/proactive-jobs/{job_id}/acknowledge": Rule(PROACTIVE_ACTION, s.proactive),
    "POST /api/v1/proactive-jobs/{job_id}/done": Rule(
        PROACTIVE_ACTION, s.proactive, body={"serial": "ZA9NEW", "note": "swapped early"}),
    "POST /api/v1/proactive-jobs/{job_id}/dismiss": Rule(
        PROACTIVE_ACTION, s.proactive, body={"reason": "counter reset by a firmware update"}),
    # planned work with the customer: the customer answers its own plan (another customer's
    # is a 404), staff read it; a customer sets its own maintenance windows
    "GET /api/v1/planned-work": Rule(EVERYONE, s.planned, "?limit=200", listed=True),
    "GET /api/v1/planned-work/{job_id}": Rule((401, 200, 404, 200, 200, 200, 200), s.planned),
    "POST /api/v1/planned-work/{job_id}/accept": Rule(CUSTOMER_STEP, s.planned),
    "POST /api/v1/planned-work/{job_id}/move": Rule(CUSTOMER_STEP, s.planned,
                                                    body={"start": "{later}"}),
    "POST /api/v1/planned-work/{job_id}/decline": Rule(CUSTOMER_STEP, s.planned,
                                                       body={"reason": "not this quarter"}),
    "GET /api/v1/maintenance-windows": Rule((401, 200, 404, 200, 200, 200, 200), s.planned,
                                            "?customer=acme"),
    "PUT /api/v1/maintenance-windows": Rule(
        (401, 200, 200, 403, 403, 403, 403),
        body={"windows": [{"days": ["tue"], "start": "02:00", "end": "05:00",
                           "timezone": "Europe/Berlin"}]}),
    # sign-in: sessions are a person's own (an admin sees and ends anyone's), links are sent
    # by managers and admins, the audit is for admins
    "GET /api/v1/sessions": Rule(EVERYONE),
    "GET /api/v1/me": Rule(EVERYONE),
    "POST /api/v1/sessions/{session_id}/revoke": Rule((401, 200, 404, 404, 404, 404, 200),
                                                      s.acme_session),
    "POST /api/v1/sessions/revoke-all": Rule((401, 200, 200, 200, 200, 200, 403)),
    "POST /api/v1/signin-links": Rule(MANAGERS_ACCEPT, s.ana_reachable,
                                      body={"person": "t-ana"}),
    "GET /api/v1/auth-events": Rule((401, 403, 403, 403, 403, 403, 200)),
    "POST /signout": Rule((401, 303, 303, 303, 303, 303, 303)),
    # passkeys: staff (a technician or manager) add, list and remove their own; customers
    # sign in with links, an admin token is no person. A registration answers the challenge
    # t-ana's options gave (a software authenticator signs it): anyone else's is refused
    "POST /api/v1/passkeys/register/options": Rule(PEOPLE_STAFF),
    "POST /api/v1/passkeys/register": Rule(
        (401, 403, 403, 201, 400, 400, 403), s.ana_registration,
        body={"credential": s.Made("registration"), "name": "phone"}),
    "GET /api/v1/passkeys": Rule(PEOPLE_STAFF),
    "POST /api/v1/passkeys/{passkey_id}/remove": Rule((401, 403, 403, 200, 404, 404, 403),
                                                      s.ana_passkey),
    # web push: staff (a technician or manager) subscribe their own devices; customers are
    # told push is for staff, an admin token is no person. A manager answers an escalation
    "GET /api/v1/push/key": Rule(PEOPLE_STAFF),
    "POST /api/v1/push/subscriptions": Rule((401, 403, 403, 201, 201, 201, 403), s.push_device,
                                            body=s.Made("push_device")),
    "GET /api/v1/push/subscriptions": Rule(PEOPLE_STAFF),
    "DELETE /api/v1/push/subscriptions/{subscription_id}": Rule(
        (401, 403, 403, 204, 404, 404, 403), s.ana_push_subscription),
    "POST /api/v1/incidents/{incident_id}/escalation/acknowledge": Rule(MANAGER_PERSON,
                                                                        s.escalated),
    "POST /api/v1/incidents/{incident_id}/escalation/decline": Rule(
        MANAGER_PERSON, s.escalated, body={"reason": "Declined from the notification"}),
}

#: Routes anyone may call without a token, and why that is safe.
PUBLIC: dict[str, str] = {
    "GET /healthz": "liveness for the process supervisor: says only 'ok'",
    "GET /readyz": "readiness for the load balancer: database reachable, loop alive",
    "GET /metrics": "Prometheus scrapes without a token: fleet-wide counts, no customer names",
    "GET /": "links to the pages",
    "GET /tech": "the technician's page: a static shell, its data comes from the API",
    "GET /status": "the customer's page: a static shell, its data comes from the API",
    "GET /ops": "the operations page: a static shell, its data comes from the API",
    "GET /web/{name}.js": "the pages' scripts: static files, no data",
    "GET /manifest.webmanifest": "/tech's web app manifest: a static file, no data",
    "GET /sw.js": "/tech's service worker: a static file, no data (it calls the API as the page)",
    "GET /web/icons/{name}.png": "/tech's app icons: static files, no data",
    "GET /openapi.json": "the API's schema is public documentation",
    "GET /signin": "the sign-in page: asks for an email address",
    "POST /signin": "asks for a link: the same answer whether the address is known or not",
    "GET /signin/{code}": "a link's page: one button; consumes nothing",
    "POST /signin/{code}": "uses a one-time code (192 random bits), rate limited per client",
    "GET /signin/oidc": "starts the company sign-in (404 while auth.oidc is not set)",
    "GET /signin/oidc/callback": "the provider's way back: state, PKCE and nonce checked",
    "GET /passkeys": "the passkeys page: a static shell, its data comes from the API",
    "POST /signin/passkey/options": "a fresh single-use challenge for a passkey sign-in; no data",
    "POST /signin/passkey": "a passkey's signed answer, verified; refusals rate limited per client",
    "GET /docs": "Swagger UI over the public schema",
    "GET /docs/oauth2-redirect": "Swagger UI's own helper page",
    "GET /redoc": "ReDoc over the public schema",
}


def app_routes() -> list[str]:
    """Every "METHOD /path" the app serves (HEAD and OPTIONS come with GET and CORS)."""
    app = create_app("postgresql://127.0.0.1/never-opened")  # the pool opens on startup only
    found = {f"{m} {r.path}" for r in iter_route_contexts(app.routes)
             for m in (r.methods or ()) if m not in ("HEAD", "OPTIONS")}
    return sorted(found)


ROUTES = app_routes()  # at collection: the tests are parametrized by them; nothing connects


def test_every_route_has_a_rule() -> None:
    missing = [r for r in ROUTES if r not in RULES and r not in PUBLIC]
    assert not missing, "\n".join(f"route {r} has no permission rule in "
                                  "tests/dispatcher/test_api_permissions.py: add who may call it"
                                  for r in missing)


def test_every_rule_names_a_route() -> None:
    gone = sorted((set(RULES) | set(PUBLIC)) - set(ROUTES))
    assert not gone, f"rules for routes the app no longer has: {gone}; remove them"
    assert not set(RULES) & set(PUBLIC), "a route is either public or has a rule, not both"


def known_bug(reason: str | None) -> list[pytest.MarkDecorator]:
    """An xfail for a cell the app gets wrong: strict, so it fails the day the app is fixed,
    and only for a failed assertion, so a broken setup is not taken for the bug."""
    return [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] if reason \
        else []


def _cells() -> list[Any]:
    """One test per route the app has and caller; a missing rule fails each of them."""
    return [pytest.param(route, caller, id=f"{route} {caller}",
                         marks=known_bug(RULES[route].bugs.get(caller) if route in RULES
                                         else None))
            for route in ROUTES if route not in PUBLIC for caller in CALLERS]


@pytest.fixture(scope="module")
def tracebacks(base_url: str) -> Iterator[s.Tracebacks]:
    """Told when the server has printed a 500's traceback (see s.Tracebacks)."""
    handler, logger = s.Tracebacks(), logging.getLogger("uvicorn")
    logger.addHandler(handler)  # after uvicorn's own: it runs once the print is done
    yield handler
    logger.removeHandler(handler)


@pytest.fixture
def world(base_url: str, db: psycopg.Connection[tuple[Any, ...]], fleet: Fleet,
          open_incident: OpenIncident, tracebacks: s.Tracebacks) -> s.World:
    """What the setups build on."""
    return s.World(base_url, db, fleet, open_incident, tracebacks)


def request(w: s.World, token: str | None, route: str, rule: Rule,
            ids: s.Ids) -> httpx.Response:
    """Call the route with its path parameters filled from ids; an event stream is closed as
    soon as its status is known."""
    method, template = route.split(" ")
    path = template.format(**ids) + rule.query
    body = None if rule.body is None else s.fill(rule.body, ids)
    if rule.stream:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.stream(method, w.base_url + path, headers=headers) as r:
            if r.status_code >= 400:
                r.read()
    elif rule.content is not None:
        r = call(w.base_url, token, method, path, content=rule.content)
    else:
        r = call(w.base_url, token, method, path, json=body)
    if r.status_code == 500:
        w.tracebacks.wait()
    return r


@pytest.mark.parametrize(("route", "caller"), _cells())
def test_permission_matrix(who: dict[str, str | None], world: s.World, route: str,
                           caller: str) -> None:
    rule = RULES.get(route)
    if rule is None:
        pytest.fail(f"route {route} has no permission rule in "
                    "tests/dispatcher/test_api_permissions.py: add who may call it")
    expected = rule.expect[CALLERS.index(caller)]
    ids = rule.needs(world)
    r = request(world, who[caller], route, rule, ids)
    assert r.status_code == expected, f"{caller}: {route} -> {r.status_code} {r.text}"
    if expected >= 400:
        detail = r.json()["detail"]
        assert isinstance(detail, str)
        assert detail
    elif rule.listed:
        shown = {item["id"] for item in r.json()["items"]}
        assert (ids["listed"] in shown) == (caller != "other_customer"), r.text


def _tenant_routes() -> list[Any]:
    """Routes that name one of acme's resources, in the path or in the body."""
    return [pytest.param(route, id=route, marks=known_bug(RULES[route].leak))
            for route in ROUTES if route in RULES
            and ("{" in route or s.names_ids(RULES[route].body))]


@pytest.mark.parametrize("route", _tenant_routes())
def test_other_customer_cannot_tell_what_exists(who: dict[str, str | None], world: s.World,
                                                route: str) -> None:
    rule = RULES[route]
    ids = rule.needs(world)
    real = request(world, who["other_customer"], route, rule, ids)
    absent = request(world, who["other_customer"], route, rule, s.missing(ids))
    assert real.status_code == absent.status_code, (
        f"{route}: another customer gets {real.status_code} for acme's resource "
        f"({real.text}) and {absent.status_code} for a missing one")


def test_a_token_in_the_url_is_refused(who: dict[str, str | None], world: s.World) -> None:
    """Design, Sign-in: a bearer token is accepted only in the Authorization header (a URL
    ends up in logs and history); the pages' live stream rides on the session cookie."""
    taken = []
    for route, rule in RULES.items():
        caller = next(c for c, status in zip(CALLERS, rule.expect, strict=True)
                      if status < 400)
        query = f"{rule.query}{'&' if rule.query else '?'}access_token={who[caller]}"
        r = request(world, None, route, replace(rule, query=query), rule.needs(world))
        if r.status_code != 401:
            taken.append(f"{route} ({caller}): {r.status_code}")
    assert not taken, f"a token in the URL was taken by: {taken}"


@pytest.mark.parametrize("route", sorted(PUBLIC))
def test_public_routes_answer_anonymous(base_url: str, route: str) -> None:
    method, path = route.split(" ")
    # /web/{name}.js and /web/icons/{name}.png: a script and an icon that exist
    path = path.replace("icons/{name}", "icons/icon-192").replace("{name}", "common")
    # no email address given, and a code that is no code: refused with what to do
    expected = {"POST /signin": 422, "GET /signin/{code}": 410, "POST /signin/{code}": 410,
                "POST /signin/passkey": 422, "GET /signin/oidc": 404,
                "GET /signin/oidc/callback": 404}
    assert call(base_url, None, method, path).status_code == expected.get(route, 200)


def test_customer_lists_only_its_own(base_url: str, who: dict[str, str | None],
                                     open_incident: OpenIncident) -> None:
    mine, theirs = open_incident("web-01"), open_incident("db-07")
    ids = {i["id"] for i in call(base_url, who["owner"], "GET", "/api/v1/incidents?limit=200")
           .json()["items"]}
    assert mine.incident in ids
    assert theirs.incident not in ids
    # asking for another customer by filter does not widen the scope
    other = call(base_url, who["owner"], "GET", "/api/v1/incidents?customer=globex").json()
    assert {i["customer"] for i in other["items"]} <= {"acme"}


def test_technician_sees_only_own_jobs(base_url: str, who: dict[str, str | None],
                                       open_incident: OpenIncident) -> None:
    open_incident()
    assert call(base_url, who["other_technician"], "GET", "/api/v1/jobs").json()["items"] == []


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("GET", "/api/v1/incidents?state=exploded", None, 422, "state"),
        ("GET", "/api/v1/incidents?limit=0", None, 422, "limit"),
        ("GET", "/api/v1/incidents/not-a-number", None, 422, "incident_id"),
        ("GET", "/api/v1/incidents/999999", None, 404, "no incident"),
        ("GET", "/api/v1/credits?month=2026-13", None, 422, "month"),
        ("POST", "/api/v1/jobs/{j}/replaced", {"serial": ""}, 422, "serial"),
        ("POST", "/api/v1/jobs/{j}/replaced", {}, 422, "serial"),
        ("POST", "/api/v1/jobs/{j}/decline", {"reason": 5}, 422, "reason"),
        ("POST", "/api/v1/jobs/{j}/replaced", {"serial": "ZA9NEW01"}, 409, "applies to"),
        ("POST", "/api/v1/jobs/999999/acknowledge", None, 404, "no job"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(
    base_url: str, who: dict[str, str | None], open_incident: OpenIncident, method: str,
    path: str, body: dict[str, Any] | None, status: int, words: str,
) -> None:
    opened = open_incident()
    r = call(base_url, who["technician"], method, path.format(j=opened.job), json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


def test_malformed_token_header(base_url: str) -> None:
    r = httpx.get(base_url + "/api/v1/incidents", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401
    assert "Bearer" in r.json()["detail"]
