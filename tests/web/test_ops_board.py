"""/ops for managers in real headless Chromium against the real app, engine and PostgreSQL
(issue 16, items 5 and 6): the foreseen-breach block for the far-technician world, the
charts, reassign, pause and resume from the board, at a phone and a desktop viewport."""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from dispatcher.service.engine import run_pass
from dispatcher.store import claims
from tests.conftest import eventually
from tests.dispatcher.world import P
from tests.dispatcher.world import open_incident as detect
from tests.web.conftest import Fleet, OpenIncident, SignIn, _watched

Conn = psycopg.Connection[tuple[Any, ...]]
SHOTS = os.environ.get("HOURGLASS_SHOTS", tempfile.gettempdir())  # for looking at, not the repo
AXE = Axe()  # axe-core as the package bundles it
PHONE_390 = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def board(db: Conn, fleet: Fleet) -> None:
    """A second disk technician, t-bob; three fixes this week at iad1 (two by t-ana, one by
    t-bob), one late."""
    db.execute("INSERT INTO technicians (id, name, site_id, role, skills) VALUES"
               " ('t-bob', 'Bob Stone', 'iad1', 'technician', '{disk}')")
    now = datetime.now(UTC)
    for n, (tech, fix) in enumerate([("t-ana", 30), ("t-ana", 75), ("t-bob", 40)]):
        detected = now - timedelta(days=n + 1)
        row = db.execute(
            "INSERT INTO incidents (host_id, site_id, customer_id, component, kind, failure,"
            " slot, serial, state, detected_at, deadline, sla_minutes, assignee, verified_at)"
            " VALUES ('web-01', 'iad1', 'acme', %s, 'disk', 'smart_failed', 'sdb', 'OLD',"
            " 'verified', %s, %s, 60, %s, %s) RETURNING id",
            (f"disk:{uuid.uuid4().hex[:8]}", detected, detected + timedelta(minutes=60), tech,
             detected + timedelta(minutes=fix))).fetchone()
        assert row is not None
        db.execute("INSERT INTO jobs (incident_id, technician_id, state, dispatched_at,"
                   " acknowledged_at, on_site_at) VALUES (%s, %s, 'done', %s, %s, %s)",
                   (row[0], tech, detected, detected + timedelta(minutes=2),
                    detected + timedelta(minutes=12)))


def _page(browser: Any, viewport: dict[str, int], phone: bool) -> Iterator[Any]:
    context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone)
    yield from _watched(context.new_page())
    context.close()


@pytest.fixture
def phone390(browser: Any) -> Iterator[Any]:
    """A 390x844 phone page."""
    yield from _page(browser, PHONE_390, True)


@pytest.fixture
def wide(browser: Any) -> Iterator[Any]:
    """A 1280x800 desktop page."""
    yield from _page(browser, DESKTOP, False)


def serious(page: Any) -> list[str]:
    """axe-core's serious or critical violations, the folded tables unfolded first."""
    page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    return [f"{v['id']}: {[n['target'] for n in v['nodes']]}"
            for v in AXE.run(page).response["violations"]
            if v["impact"] in ("serious", "critical")]


def _incident(base_url: str, fleet: Fleet, incident: int) -> dict[str, Any]:
    r = httpx.get(f"{base_url}/api/v1/incidents/{incident}",
                  headers={"Authorization": f"Bearer {fleet.manager}"})
    assert r.status_code == 200, r.text
    got: dict[str, Any] = r.json()
    return got


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_the_charts_render_with_their_bars_and_tables(
        request: pytest.FixtureRequest, size: str, base_url: str, fleet: Fleet, board: None,
        signin: SignIn) -> None:
    page = request.getfixturevalue("phone390" if size == "phone" else "wide")
    signin(page, fleet.manager, "/ops")
    expect(page.locator("#chart-daily")).to_be_visible()
    expect(page.locator("#chart-daily g.bar")).to_have_count(30)  # one bar a day
    expect(page.locator("#chart-sites rect.bar")).to_have_count(2)  # iad1: median and p90
    expect(page.locator("#chart-techs rect.bar")).to_have_count(4)  # t-ana and t-bob
    expect(page.locator("#chart-daily-t")).to_have_text("Promises kept per day, last 30 days")
    expect(page.locator('[data-figure="promises kept, 7 days"] b')).to_have_text("66.7 %")
    page.locator("#chart-techs + details summary").click()
    expect(page.locator("#chart-techs + details table")).to_contain_text("t-bob")
    expect(page.locator("#csv")).to_have_attribute("href", "/api/v1/figures.csv")
    page.screenshot(path=f"{SHOTS}/hg-ops-figures-{size}.png", full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= (PHONE_390 if size == "phone" else DESKTOP)["width"]  # no sideways page


def test_pause_then_resume_from_the_board_at_a_phone_viewport(
        phone390: Any, base_url: str, fleet: Fleet, board: None, open_incident: OpenIncident,
        signin: SignIn) -> None:
    opened = open_incident()
    signin(phone390, fleet.manager, "/ops")
    row = phone390.locator(f'tr[data-incident="{opened.incident}"]')
    row.get_by_role("button", name="Pause").click()
    dialog = phone390.locator("#act")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Why").select_option("customer_maintenance_window")
    dialog.get_by_role("button", name="Pause the clock").click()
    expect(dialog).to_be_hidden()
    assert _incident(base_url, fleet, opened.incident)["state"] == "paused"
    expect(row.locator(".st")).to_have_text("paused")
    row.get_by_role("button", name="Resume").click()
    dialog.get_by_role("button", name="Resume the clock").click()
    expect(dialog).to_be_hidden()
    expect(row.locator(".st")).to_have_text("dispatched")
    assert _incident(base_url, fleet, opened.incident)["state"] == "dispatched"


def test_reassign_from_the_board_moves_the_job(
        wide: Any, base_url: str, fleet: Fleet, board: None, open_incident: OpenIncident,
        signin: SignIn) -> None:
    opened = open_incident()
    signin(wide, fleet.manager, "/ops")
    wide.locator(f'tr[data-incident="{opened.incident}"]').get_by_role(
        "button", name="Reassign").click()
    dialog = wide.locator("#act")
    pick = dialog.get_by_label("Technician")
    expect(pick).to_be_enabled()
    wide.screenshot(path=f"{SHOTS}/hg-ops-reassign.png")
    assert serious(wide) == []  # the dialog open over the board
    expect(pick.locator("option")).to_have_text([re.compile(r"^Bob Stone: fix .*")])
    dialog.get_by_role("button", name="Reassign").click()
    expect(dialog).to_be_hidden()
    after = _incident(base_url, fleet, opened.incident)
    assert (after["assignee"], after["state"]) == ("t-bob", "dispatched")
    expect(wide.locator(f'tr[data-incident="{opened.incident}"]')).to_contain_text("Bob Stone")


def test_foreseen_breach_shows_and_a_reassignment_that_fits_clears_it(
        wide: Any, base_url: str, web_db: str, db: Conn, fleet: Fleet, board: None,
        signin: SignIn) -> None:
    # the earlier tests' jobs done with: both technicians free, the racks 63 minutes away
    db.execute("UPDATE jobs SET state = 'done' WHERE state IN ('dispatched', 'acknowledged',"
               " 'on_site', 'replaced')")
    db.execute("UPDATE incidents SET state = 'closed', closed_at = now() WHERE state IN"
               " ('detected', 'dispatched', 'acknowledged', 'on_site', 'replaced', 'paused')")
    db.execute("UPDATE sites SET walk_minutes = '{\"*\": 63}' WHERE id = 'iad1'")
    now = datetime.now(UTC)  # detected and dispatched at the same instant: exactly 19 late
    incident = detect(db, now)
    with psycopg.connect(web_db, autocommit=True) as conn:
        run_pass(conn, P, now, "test")
    job = db.execute("SELECT technician_id FROM jobs WHERE incident_id = %s",
                     (incident,)).fetchone()
    assert job is not None
    signin(wide, fleet.manager, "/ops")
    block = wide.locator(f'#foreseen [data-foreseen="{incident}"]')
    expect(block).to_be_visible()
    expect(block).to_contain_text(f"{job[0]}'s fix is predicted at")
    expect(block).to_contain_text("19 min past the deadline")
    wide.screenshot(path=f"{SHOTS}/hg-ops-foreseen.png")
    expect(wide.locator("#chart-daily")).to_be_visible()
    assert serious(wide) == []  # the foreseen block, the board, the queues, the charts
    # a live redraw detaches the block for a moment (bounding_box then answers None)
    box = eventually(wide.locator("#foreseen").bounding_box, 5, "the block laid out", 0.05)
    assert box["y"] < 200  # at the top of the page
    db.execute("UPDATE sites SET walk_minutes = '{}' WHERE id = 'iad1'")  # someone closer now
    block.get_by_role("button", name="Reassign").click()
    dialog = wide.locator("#act")
    expect(dialog.get_by_label("Technician")).to_be_enabled()
    expect(dialog.get_by_label("Technician").locator("option")).to_contain_text(["in time"])
    dialog.get_by_role("button", name="Reassign").click()
    expect(dialog).to_be_hidden()
    expect(block).to_have_count(0)
    expect(wide.locator("#foreseen")).to_contain_text("None: every live job's predicted fix")
    assert _incident(base_url, fleet, incident)["assignee"] != job[0]


def test_a_manager_takes_a_claim_over_from_the_queue(
        wide: Any, base_url: str, db: Conn, fleet: Fleet, board: None, signin: SignIn) -> None:
    claim = claims.open_claim(db, "acme", None, "the fix took too long", "customer:acme",
                              datetime.now(UTC))
    signin(wide, fleet.manager, "/ops")
    row = wide.locator(f'#claims tr[data-claim="{claim}"]')
    expect(row).to_contain_text("nobody yet")
    row.get_by_role("button", name="Take over").click()
    wide.locator("#act").get_by_role("button", name="Take it over").click()
    expect(wide.locator("#act")).to_be_hidden()
    expect(row).to_contain_text("t-maria")
    r = httpx.get(f"{base_url}/api/v1/claims/{claim}",
                  headers={"Authorization": f"Bearer {fleet.manager}"})
    assert r.json()["manager"] == "t-maria"
