"""Accessibility of every page: axe-core in real headless Chromium at a phone viewport, signed
out and signed in as the role each page is for, with data on the page.

`PAGES` is the one list of pages: a new page is one line there. The test fails on any
violation of impact "serious" or "critical" and prints each one's rule, impact, target and help
URL. The same table and world make the pictures in docs/screenshots/ (`scripts/screenshots`
runs `test_screenshots`, marker `screenshots`, which CI skips).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from axe_playwright_python.sync_playwright import Axe

from dispatcher.store import auth, contacts
from schemas.states import Role
from tests.web.conftest import Fleet, OpenIncident, SignIn
from tests.web.selfservice import write_readings

# a browser module that mostly waits: it runs beside the rest (scripts/test), to keep CI short
pytestmark = pytest.mark.beside

Conn = psycopg.Connection[tuple[Any, ...]]
#: The phone of the issue's measurements: 390x844 CSS pixels (iPhone 12 to 15).
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
#: The impacts that fail the test; "moderate" and "minor" are reported by the screenshot run.
FAILING = ("serious", "critical")
IMPACTS = ("critical", "serious", "moderate", "minor")
#: Where `scripts/screenshots` wants the pictures; unset (CI), test_screenshots is skipped.
SHOTS = os.environ.get("HOURGLASS_SCREENSHOTS")
AXE = Axe()  # axe-core as the package bundles it, read once


@dataclass(frozen=True)
class Page:
    """One page to check: its name in the pictures, its path ({link} and {used} are the
    world's one-time codes), who looks at it (None: signed out), what shows it has loaded
    (the pages load their parts apart), and a tap that opens a part drawn only on demand."""

    name: str
    path: str
    role: Role | None
    ready: tuple[str, ...]  # each shown once the page has drawn what it loads
    tap: str = ""  # then tap this (a dialog, a step), and wait for `shows`
    shows: str = ""

    @property
    def label(self) -> str:
        """The page and who looks, as in the pictures' file names."""
        return f"{self.name}-{'signed-in' if self.role else 'signed-out'}"


PAGES = (
    Page("index", "/", None, ("main a[href='/status']",)),
    Page("signin", "/signin", None, ("#email",)),
    Page("signin-link", "/signin/{link}", None, ("form button[type=submit]",)),
    Page("signin-used", "/signin/{used}", None, ("p.bad",)),
    Page("tech", "/tech", None, ("#help",)),
    Page("tech", "/tech", Role.TECHNICIAN, ("[data-job]", "[data-pjob]")),
    Page("tech-decline", "/tech", Role.TECHNICIAN, ("[data-job]",),
         "[data-act=decline]", "#sheet textarea, #sheet input"),
    Page("status", "/status", None, ("#help",)),
    Page("status", "/status", Role.CUSTOMER, ("[data-incident]", "[data-review]",
                                              "figure[data-chart] svg", "#contacts li")),
    # confirms the late fix (the world keeps it closed), so after the row above
    Page("status-survey", "/status", Role.CUSTOMER, ("[data-confirm]",), "[data-confirm]",
         "[data-survey] [data-score]"),
    Page("ops", "/ops", None, ("#help",)),
    Page("ops", "/ops", Role.MANAGER, ("tr[data-incident]", "tr[data-pjob]",
                                       "[data-count='open claims']")),
    Page("passkeys", "/passkeys", None, ("#passkeys li",)),
    Page("passkeys", "/passkeys", Role.TECHNICIAN, ("#passkeys li",)))


def seed(db: Conn, open_incident: OpenIncident) -> dict[str, str]:
    """A small demo-like world on the test fleet: open incidents in several states with their
    jobs (one with its readings' chart, the contract asking for cage access), a late fix with
    its credit and review, a planned job, a claim, a customer's contact; and two one-time
    codes for the link pages, one of them already used."""
    db.execute("UPDATE customers SET cage_access = 'ask' WHERE id = 'acme'")  # the question
    open_incident(host="web-01", slot="sdb", minutes_left=42)
    chart = open_incident(host="web-01", slot="sdc", state="on_site", minutes_left=11,
                          component="disk:ZA1AXE")  # the soonest: on top, with its chart
    (detected,) = db.execute("SELECT detected_at FROM incidents WHERE id = %s",
                             (chart.incident,)).fetchone() or (None,)
    write_readings(db, "web-01", "disk:ZA1AXE", "smart.attr_5_raw",  # the evidence's chart
                   [(detected - timedelta(minutes=m), float(v))
                    for m, v in ((150, 0), (110, 0), (70, 2), (35, 5), (2, 8))], 1000)
    contacts.add(db, "acme", "email", "oncall@acme.example", "customer:acme", datetime.now(UTC))
    open_incident(host="db-07", slot="sda", state="detected", minutes_left=50)
    late = open_incident(host="web-01", slot="sdd", state="verified", minutes_left=-20)
    db.execute("UPDATE incidents SET verified_at = deadline + interval '20 minutes' WHERE id = %s",
               (late.incident,))
    db.execute("INSERT INTO credits (incident_id, customer_id, amount, currency, percent,"
               " periods, late_seconds, policy, issued_at) VALUES (%s, 'acme', 22.50, 'USD', 5,"
               " 1, 1200, '{}', now())", (late.incident,))
    db.execute("INSERT INTO reviews (incident_id, cause, author, created_at, updated_at) VALUES"
               " (%s, 'The spare disk was at another site.', 'manager:t-maria', now(), now())",
               (late.incident,))
    db.execute("INSERT INTO review_items (incident_id, n, text, owner, due_at) VALUES"
               " (%s, 1, 'Two spares of this model at iad1', 't-maria', now() + interval '7 days')",
               (late.incident,))
    (prediction,) = db.execute(
        "INSERT INTO predictions (host_id, site_id, customer_id, component, kind, prediction,"
        " rule, slot, detected_at, last_seen) VALUES ('web-01', 'iad1', 'acme', 'disk:PRED1',"
        " 'disk', 'smart_counter_rising', 'smart_baseline', 'sde', now(), now())"
        " RETURNING id").fetchone() or (0,)
    db.execute("INSERT INTO proactive_jobs (prediction_id, site_id, technician_id, planned_at)"
               " VALUES (%s, 'iad1', 't-ana', now() - interval '2 hours')", (prediction,))
    db.execute("INSERT INTO collector_status (client_id, ready, detection_paused, updated_at)"
               " VALUES ('hg-collector-a', true, false, now())")  # no ingest alert on /ops
    db.execute("INSERT INTO claims (customer_id, text, opened_at, updated_at)"
               " VALUES ('acme', 'Nobody called us back about the late disk.', now(), now())")
    now = datetime.now(UTC)
    who = auth.Person(Role.CUSTOMER, "acme", None, "ops@acme.example")
    link = auth.create_code(db, who, timedelta(minutes=30), "test", now)
    used = auth.create_code(db, who, timedelta(minutes=30), "test", now)
    auth.consume_code(db, used, now)
    return {"link": link, "used": used}


@pytest.fixture(scope="module")
def world_made() -> dict[str, str]:
    """The module's world once seeded (the pages' tests share it)."""
    return {}


@pytest.fixture
def world(world_made: dict[str, str], db: Conn, fleet: Fleet,
          open_incident: OpenIncident) -> dict[str, str]:
    """The world, seeded by the first test that asks."""
    if not world_made:
        world_made.update(seed(db, open_incident))
    return world_made


@pytest.fixture(scope="module")
def tabs(browser: Any, base_url: str) -> Iterator[dict[tuple[Role | None, str], Any]]:
    """One page per (role, viewport), made and signed in on first use, closed at the end
    (before the server stops: their live streams are still open)."""
    made: dict[tuple[Role | None, str], Any] = {}
    yield made
    for page in made.values():
        page.context.close()


@pytest.fixture
def tab(tabs: dict[tuple[Role | None, str], Any], browser: Any, fleet: Fleet,
        signin: SignIn) -> Any:
    """tab(role, viewport): the module's page for that role (signed in by a one-time link's
    button, as a person does) at that viewport."""
    tokens = {Role.TECHNICIAN: fleet.tech, Role.CUSTOMER: fleet.acme, Role.MANAGER: fleet.manager}

    def get(role: Role | None, viewport: str = "phone") -> Any:
        if (role, viewport) not in tabs:
            phone = viewport == "phone"
            context = browser.new_context(viewport=PHONE if phone else DESKTOP,
                                          is_mobile=phone, has_touch=phone)
            page = context.new_page()
            if role is not None:
                signin(page, tokens[role])
            tabs[role, viewport] = page
        return tabs[role, viewport]

    return get


def open_page(page: Any, base_url: str, spec: Page, world: dict[str, str]) -> None:
    """Open the page and wait until it shows its data, animations finished (axe measures
    colours as drawn, and a flash mid-way is not the page's colour)."""
    page.goto(base_url + spec.path.format(**world))
    for shown in spec.ready:
        page.locator(shown).first.wait_for(state="visible", timeout=10_000)
    if spec.tap:
        page.locator(spec.tap).first.click()
        page.locator(spec.shows).first.wait_for(state="visible", timeout=10_000)
        page.locator(spec.shows).first.scroll_into_view_if_needed()
    page.evaluate("document.getAnimations().forEach((a) => { try { a.finish(); } catch (e) {} })")


def violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page, its folded parts (timelines, the invite form)
    unfolded first: axe checks only what is shown."""
    page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    found: list[dict[str, Any]] = AXE.run(page).response["violations"]
    return found


def describe(spec: Page, found: list[dict[str, Any]]) -> str:
    """Each violation's rule, impact, targets and help URL, one a line."""
    lines = [f"{spec.label} ({spec.path}):"]
    for v in found:
        lines.append(f"  {v['id']} [{v['impact']}] {v['help']}: {v['helpUrl']}")
        for node in v["nodes"][:5]:  # enough to find them; the rest are usually the same
            why = " ".join(str(node.get("failureSummary", "")).split())
            lines.append(f"    {' '.join(node['target'])}: {why[:200]}")
        if len(v["nodes"]) > 5:
            lines.append(f"    … and {len(v['nodes']) - 5} more")
    return "\n".join(lines)


@pytest.mark.parametrize("spec", PAGES, ids=[p.label for p in PAGES])
def test_no_serious_or_critical_axe_violation(spec: Page, tab: Any, base_url: str,
                                              world: dict[str, str]) -> None:
    page = tab(spec.role)
    open_page(page, base_url, spec, world)
    found = [v for v in violations(page) if v["impact"] in FAILING]
    if found:
        pytest.fail(describe(spec, found), pytrace=False)


def test_the_check_sees_a_violation(tab: Any) -> None:
    """axe is injected and answers: an image without a text alternative is critical."""
    page = tab(None)
    page.set_content('<html lang="en"><title>t</title><main><img src="/x.png"></main></html>')
    found = {v["id"]: v["impact"] for v in violations(page)}
    assert found.get("image-alt") == "critical"


@pytest.mark.screenshots
@pytest.mark.skipif(not SHOTS, reason="scripts/screenshots sets HOURGLASS_SCREENSHOTS")
def test_screenshots(tab: Any, base_url: str, world: dict[str, str]) -> None:
    """Each page's picture at the phone viewport (and /ops at the desktop's too) into
    $HOURGLASS_SCREENSHOTS, then a table of axe's violations per page by impact."""
    out = Path(str(SHOTS))
    out.mkdir(parents=True, exist_ok=True)
    runs = [(spec, "phone") for spec in PAGES]
    runs += [(spec, "desktop") for spec in PAGES if spec.name == "ops" and spec.role]
    rows = []
    for spec, viewport in runs:
        page = tab(spec.role, viewport)
        open_page(page, base_url, spec, world)
        name = spec.label + ("" if viewport == "phone" else "-desktop")
        page.screenshot(path=str(out / f"{name}.png"))
        found = violations(page)
        impacts = Counter(v["impact"] for v in found)
        rows.append((name, [impacts.get(i, 0) for i in IMPACTS], ", ".join(
            f"{v['id']} ({v['impact']}, {len(v['nodes'])} elements)" for v in found) or "-"))
    print("\nRules violated per page, by impact (axe-core "
          f"{page.evaluate('axe.version')}):")
    print("\n| page | " + " | ".join(IMPACTS) + " | rules |")
    print("| --- | " + " | ".join("---" for _ in IMPACTS) + " | --- |")
    for name, counts, rules in rows:
        print(f"| {name} | " + " | ".join(str(c) for c in counts) + f" | {rules} |")
    assert len(list(out.glob("*.png"))) >= len(runs)
