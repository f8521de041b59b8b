"""Fixtures for the web pages: a migrated database, the app on a real port, headless Chromium."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import uvicorn

from dispatcher.http.app import create_app
from dispatcher.store import auth, tokens
from hourglass.config import AuthConfig
from schemas.states import Role
from tests.conftest import free_port

ADMIN_URL = os.environ.get("HOURGLASS_TEST_ADMIN_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
CHROMIUM = os.environ.get("HOURGLASS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 360, "height": 740}  # a common small Android phone, in CSS pixels


@pytest.fixture(scope="module")
def web_db(pg_template: str) -> Iterator[str]:
    """A fresh migrated database for this module (a clone of the run's template), dropped
    afterwards."""
    name = f"hg_web_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {pg_template}")
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def db(web_db: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """An autocommit connection for setting up rows and asserting on them."""
    with psycopg.connect(web_db, autocommit=True) as conn:
        yield conn


@dataclass(frozen=True)
class Fleet:
    """Tokens for the people in the test fleet."""

    tech: str  # t-ana, technician at iad1
    acme: str  # customer acme (host web-01)
    globex: str  # customer globex (host db-07)
    manager: str  # t-maria, site manager


@pytest.fixture(scope="module")
def fleet(db: psycopg.Connection[tuple[Any, ...]]) -> Fleet:
    """One site, a technician and a manager, two customers with one host each."""
    db.execute("INSERT INTO sites (id, name, timezone, manager_id)"
               " VALUES ('iad1', 'Ashburn 1', 'America/New_York', 't-maria')")
    db.execute("INSERT INTO technicians (id, name, site_id, role, skills) VALUES"
               " ('t-ana', 'Ana Souza', 'iad1', 'technician', '{disk,fan,psu}'),"
               " ('t-maria', 'Maria Lopez', 'iad1', 'manager', '{}')")
    db.execute("INSERT INTO customers (id, name) VALUES ('acme', 'Acme Corp'),"
               " ('globex', 'Globex')")
    db.execute("INSERT INTO hosts (id, customer_id, site_id, room, rack, unit, monthly_fee)"
               " VALUES ('web-01', 'acme', 'iad1', 'A', 'r12', 7, 450.00),"
               " ('db-07', 'globex', 'iad1', 'B', 'r03', 22, 900.00)")
    return Fleet(tech=tokens.create(db, Role.TECHNICIAN, None, "t-ana"),
                 acme=tokens.create(db, Role.CUSTOMER, "acme", None),
                 globex=tokens.create(db, Role.CUSTOMER, "globex", None),
                 manager=tokens.create(db, Role.MANAGER, None, "t-maria"))


SignIn = Callable[..., None]


@pytest.fixture
def signin(base_url: str, db: psycopg.Connection[tuple[Any, ...]]) -> SignIn:
    """Sign a browser page in as the person a test token names, by a one-time link's button
    (as a person does: the link's page, then POST), then open `then` if given."""

    def go(page: Any, token: str, then: str | None = None) -> Any:
        row = db.execute("SELECT role, customer_id, person_id FROM api_tokens"
                         " WHERE token_hash = %s", (tokens.digest(token),)).fetchone()
        assert row is not None, "signin() takes one of the fleet fixture's tokens"
        who = auth.Person(Role(row[0]), row[1], row[2],
                          f"ops@{row[1]}.example" if row[1] else None)
        code = auth.create_code(db, who, timedelta(minutes=5), "test", datetime.now(UTC))
        page.goto(f"{base_url}/signin/{code}")
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
        return page.goto(f"{base_url}{then}") if then is not None else None

    return go


@dataclass(frozen=True)
class Opened:
    """An incident and its live job."""

    incident: int
    job: int | None


OpenIncident = Callable[..., Opened]


@pytest.fixture
def open_incident(db: psycopg.Connection[tuple[Any, ...]], fleet: Fleet) -> OpenIncident:
    """Insert an incident (and a job for t-ana unless state is 'detected') as the engine would."""

    def make(host: str = "web-01", slot: str = "sda", state: str = "dispatched",
             minutes_left: float = 42, component: str | None = None) -> Opened:
        now = datetime.now(UTC)
        deadline = now + timedelta(minutes=minutes_left)
        customer = "acme" if host == "web-01" else "globex"
        assignee = None if state == "detected" else "t-ana"
        row = db.execute(
            "INSERT INTO incidents (host_id, site_id, customer_id, component, kind, failure, slot,"
            " serial, state, detected_at, deadline, sla_minutes, assignee, evidence)"
            " VALUES (%s, 'iad1', %s, %s, 'disk', 'smart_failed', %s, 'ZA1OLD', %s, %s, %s, 60,"
            " %s, '{\"source\": \"event\", \"smart_status\": \"FAILED\"}') RETURNING id",
            (host, customer, component or f"disk:{uuid.uuid4().hex[:8]}", slot, state,
             deadline - timedelta(minutes=60), deadline, assignee)).fetchone()
        assert row is not None
        incident = int(row[0])
        db.execute("INSERT INTO incident_events (incident_id, at, actor, kind, detail)"
                   " VALUES (%s, %s, 'collector', 'detected', '{\"rule\": \"smart_failed\"}')",
                   (incident, deadline - timedelta(minutes=60)))
        if assignee is None:
            return Opened(incident, None)
        job_state = "done" if state in ("verified", "closed") else state
        job = db.execute("INSERT INTO jobs (incident_id, technician_id, state, dispatched_at)"
                         " VALUES (%s, 't-ana', %s, %s) RETURNING id",
                         (incident, job_state, now - timedelta(minutes=5))).fetchone()
        assert job is not None
        db.execute("INSERT INTO incident_events (incident_id, at, actor, kind, detail)"
                   " VALUES (%s, %s, 'dispatcher', 'dispatched', '{\"technician\": \"t-ana\"}')",
                   (incident, now - timedelta(minutes=5)))
        return Opened(incident, int(job[0]))

    return make


@contextmanager
def serving(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """The app served by uvicorn in a background thread on a free local port; its base URL
    (host "localhost" where a browser needs a name, e.g. for WebAuthn)."""
    port = free_port()
    # Open event streams would hold a graceful shutdown forever; give them one second.
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            timeout_graceful_shutdown=1, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="web-test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def app_url(web_db: str) -> Iterator[str]:
    """The app on a real port for the module's tests."""
    # Every test's client is 127.0.0.1: one client to the rate limits, so they are set far
    # above what a module's deliberate failures add up to (test_signin tests the limits).
    with serving(create_app(web_db, auth=AuthConfig(failures_per_minute=10_000,
                                                    signin_requests_per_hour=10_000))) as url:
        yield url


@pytest.fixture(scope="module")
def base_url(app_url: str) -> str:
    """Where the module's tests and pages reach the app (a module may put a Link between)."""
    return app_url


class Link:
    """A phone's signal to the app: a TCP relay on 127.0.0.1 in front of a base URL that the
    test can cut. Cut, every open connection is reset and every new one is reset on accept,
    as a phone without signal sees it. DevTools' offline emulation alone did not hold every
    request: under CI's load an acknowledge tapped offline reached the server after a reload
    (once in many runs; which request escaped was not found). The page's navigator.onLine
    and its "offline" event still come from the emulation, so no_signal() uses both."""

    def __init__(self, base_url: str) -> None:
        target = urlsplit(base_url)
        self._target = (target.hostname or "127.0.0.1", target.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        threading.Thread(target=self._accept, name="web-test-link", daemon=True).start()

    def cut(self) -> None:
        """No signal: reset what is open, and everything that connects until restore()."""
        with self._lock:
            self._cut = True
            doomed, self._open = self._open, set()
        for s in doomed:
            _reset(s)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:  # checked as it is registered: a cut meanwhile resets it too
                cut = self._cut
                if not cut:
                    self._open.update((client, upstream))
            if cut:
                _reset(client)
                _reset(upstream)
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        with self._lock:  # one side ended: the connection ends (HTTP/1.1 needs no half-close)
            self._open.difference_update((src, dst))
        _reset(src)
        _reset(dst)


def _reset(s: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a dropped radio link ends a connection."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()


@contextmanager
def no_signal(page: Any, link: Link) -> Iterator[None]:
    """The phone without signal for the block: the relay cut and the context offline (the
    page's navigator.onLine and its "offline" event); the signal comes back after the block,
    whatever it raised, so one failing test leaves the next one online."""
    link.cut()
    page.context.set_offline(True)
    try:
        yield
    finally:
        link.restore()
        page.context.set_offline(False)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's), shared by the tests of a module."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A fresh 360x740 touch page (own storage), closed after the test."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    yield from _watched(context.new_page())
    context.close()


@pytest.fixture
def desktop(browser: Any) -> Iterator[Any]:
    """A fresh 1280x800 page, closed after the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield from _watched(context.new_page())
    context.close()


#: Reports each Content-Security-Policy violation to the console, where _watched hears it
#: (an init script is injected by the browser itself, so the policy does not block it).
REPORT_CSP = """document.addEventListener("securitypolicyviolation", (e) => console.error(
  "securitypolicyviolation: " + e.effectiveDirective + " blocked " + (e.blockedURI || "inline")
  + " at " + e.sourceFile + ":" + e.lineNumber));"""


def csp_violations(page: Any) -> list[str]:
    """The page's CSP violations so far, as _watched collected them (a test that provokes
    one on purpose clears the list once it has checked it)."""
    found: list[str] = page.csp_violations
    return found


def _watched(page: Any) -> Iterator[Any]:
    """Yield the page; fail the test if its scripts threw anything uncaught or the
    Content-Security-Policy blocked anything (the event, or Chromium's console message)."""
    errors: list[str] = []
    page.csp_violations = violations = []
    page.add_init_script(REPORT_CSP)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: violations.append(m.text) if m.type == "error" and (
        "securitypolicyviolation" in m.text or "Content Security Policy" in m.text) else None)
    yield page
    assert not errors, f"uncaught errors in the page: {errors}"
    assert not violations, f"the Content-Security-Policy blocked something: {violations}"
