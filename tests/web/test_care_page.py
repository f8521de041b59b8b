"""/status at a 390x844 phone viewport, signed in as the customer, in headless Chromium: a
prediction's plan with its evidence and window, moved to another slot and accepted; a claim
opened, our plan arriving (made through the API as a manager), accepted, notice given and
its end date shown. One browser and one server for the module."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from playwright.sync_api import expect
from psycopg.types.json import Jsonb

from dispatcher.service import proactive
from tests.web.conftest import Fleet, SignIn, _watched

Conn = psycopg.Connection[tuple[Any, ...]]
PHONE_390 = {"width": 390, "height": 844}  # an iPhone 12 to 15, in CSS pixels
SHOTS = os.environ.get("HOURGLASS_SHOTS", tempfile.gettempdir())


@pytest.fixture
def phone390(browser: Any) -> Iterator[Any]:
    """A fresh 390x844 touch page, failing the test on a script error or CSP violation."""
    context = browser.new_context(viewport=PHONE_390, device_scale_factor=3, is_mobile=True,
                                  has_touch=True)
    yield from _watched(context.new_page())
    context.close()


@pytest.fixture(scope="module")
def planned(db: Conn, fleet: Fleet) -> int:
    """Acme's Tuesday and Thursday windows, a spare, and a prediction planned by the pass."""
    db.execute("INSERT INTO spares (site_id, part, kind, count) VALUES ('iad1', 'ST8000',"
               " 'disk', 3)")
    db.execute("INSERT INTO maintenance_windows (customer_id, windows, updated_at, updated_by)"
               " VALUES ('acme', %s, now(), 'test')",
               (Jsonb([{"days": ["tue", "thu"], "start": "02:00", "end": "05:00",
                        "timezone": "Europe/Berlin"}]),))
    ev = {"attrs": {"smart.attr_5_raw": {"baseline": 0, "value": 8}}}
    now = datetime.now(UTC)
    db.execute("INSERT INTO predictions (host_id, site_id, customer_id, component, kind,"
               " prediction, rule, slot, detected_at, last_seen, evidence, last_evidence)"
               " VALUES ('web-01', 'iad1', 'acme', %s, 'disk', 'smart_counter_rising',"
               " 'smart_baseline', 'sdb', %s, %s, %s, %s)",
               (f"disk:{uuid.uuid4().hex[:8]}", now - timedelta(hours=5), now, Jsonb(ev),
                Jsonb(ev)))
    with psycopg.connect(db.info.dsn) as conn:
        assert proactive.plan(conn, now) == 1
    row = db.execute("SELECT id FROM proactive_jobs").fetchone()
    assert row is not None
    return int(row[0])


def poke(page: Any) -> None:
    """What a phone does when its owner looks again: the page refreshes at once."""
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")


def test_plan_with_evidence_moved_and_accepted(phone390: Any, signin: SignIn, fleet: Fleet,
                                               planned: int, base_url: str) -> None:
    signin(phone390, fleet.acme, "/status")
    card = phone390.locator(f"[data-plan-id='{planned}']")
    expect(card).to_contain_text("smart.attr_5_raw (reallocated sectors) rose from 0 to 8")
    expect(card).to_contain_text("inside your maintenance window")
    expect(card).to_contain_text("Spare ST8000 is reserved")
    expect(card.locator(".state")).to_have_text("Waiting for your answer")
    choice = card.locator("select[data-move-for] option").nth(1)
    target, label = choice.get_attribute("value"), choice.inner_text()
    card.locator("select[data-move-for]").select_option(target)
    card.get_by_role("button", name="Move", exact=True).click()
    expect(card.locator(".slot b")).to_have_text(label)
    card.get_by_role("button", name="Accept").click()
    expect(card.locator(".state")).to_have_text("Accepted")
    got = httpx.get(f"{base_url}/api/v1/planned-work/{planned}",
                    headers={"Authorization": f"Bearer {fleet.acme}"}).json()
    assert got["slot_start"] == target
    assert got["plan_state"] == "accepted"
    assert [e["kind"] for e in got["timeline"]][-4:] == ["plan_moved", "told", "plan_accepted",
                                                         "told"]
    card.locator("summary", has_text="Timeline").click()
    expect(card.locator("ol.timeline")).to_contain_text("Moved to another slot")
    assert phone390.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    card.screenshot(path=f"{SHOTS}/hg-status-planned-work.png")


def test_windows_edited_on_the_page_and_refused_with_the_reason(
        phone390: Any, signin: SignIn, fleet: Fleet, planned: int) -> None:
    signin(phone390, fleet.acme, "/status")
    box = phone390.locator("#windows")
    expect(box).to_contain_text("Tue, Thu 02:00–05:00 (Europe/Berlin)")
    box.get_by_label("sat").check()
    box.get_by_label("From").fill("22:00")
    box.get_by_label("to", exact=True).fill("22:30")
    box.get_by_label("Time zone").fill("UTC")
    box.get_by_role("button", name="Add window").click()
    expect(phone390.locator("#win-err")).to_contain_text("shorter than the 60 minutes")
    box = phone390.locator("#windows")
    box.get_by_label("sat").check()
    box.get_by_label("From").fill("22:00")
    box.get_by_label("to", exact=True).fill("01:00")
    box.get_by_label("Time zone").fill("UTC")
    box.get_by_role("button", name="Add window").click()
    expect(phone390.locator("#windows .wins")).to_contain_text("Sat 22:00–01:00 (UTC)")


def test_claim_opened_planned_accepted_and_noticed(phone390: Any, signin: SignIn, fleet: Fleet,
                                                   planned: int, base_url: str) -> None:
    signin(phone390, fleet.acme, "/status")
    phone390.locator("#claim-new summary").click()
    phone390.locator("#claim-text").fill("The disk swap on web-01 took three hours")
    phone390.get_by_role("button", name="Open the claim").click()
    card = phone390.locator("article.claim").first
    expect(card.locator(".state")).to_have_text("We are investigating")
    claim = card.get_attribute("data-claim-id")
    staff = {"Authorization": f"Bearer {fleet.manager}"}
    assert httpx.post(f"{base_url}/api/v1/claims/{claim}/assign", headers=staff,
                      json={"manager": "t-maria"}).status_code == 200
    due = datetime.now(UTC) + timedelta(seconds=4)  # due soon: then missed, so notice opens
    assert httpx.post(f"{base_url}/api/v1/claims/{claim}/plan", headers=staff, json={
        "items": [{"text": "Keep two spares of each disk on site", "owner": "t-maria",
                   "due_at": due.isoformat()}]}).status_code == 200
    poke(phone390)
    expect(card.locator(".state")).to_have_text("Our plan awaits your answer")
    expect(card).to_contain_text("Keep two spares of each disk on site")
    card.get_by_role("button", name="Accept the plan").click()
    expect(card.locator(".state")).to_have_text("Plan accepted: we are carrying it out")
    wait = (due - datetime.now(UTC)).total_seconds()
    if wait > 0:
        phone390.wait_for_timeout(wait * 1000 + 200)
    poke(phone390)
    card.get_by_role("button", name="Give 30 days' notice").click()
    expect(card.locator(".state")).to_have_text("Notice given")
    shown = httpx.get(f"{base_url}/api/v1/claims/{claim}",
                      headers={"Authorization": f"Bearer {fleet.acme}"}).json()
    end = phone390.evaluate("(iso) => new Date(iso).toLocaleDateString([], {year: 'numeric',"
                            " month: 'long', day: 'numeric'})", shown["notice"]["effective_at"])
    expect(card.locator(".notice-end")).to_have_text(end)
    expect(card.get_by_role("button", name="Send")).to_be_visible()  # the exit survey follows
    card.screenshot(path=f"{SHOTS}/hg-status-claim.png")
