"""/status self-service in a real phone browser (390x844, signed in as the customer): the
evidence chart, the technician's progress updating live, cage access, and contacts with a
Test that a local receiver gets. One server (with the delivery workers) and one browser for
the module."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
from playwright.sync_api import expect

from dispatcher import delivery
from dispatcher.http.app import create_app
from hourglass.config import AuthConfig, NotifyConfig
from tests.web.conftest import Fleet, OpenIncident, SignIn, _watched, serving
from tests.web.selfservice import Hook, receiver, write_readings

Conn = psycopg.Connection[tuple[Any, ...]]
SHOTS = os.environ.get("HOURGLASS_SHOTS", tempfile.gettempdir())
CLOCK = re.compile(r"\d{1,2}:\d\d")  # a local time of day
PHONE = {"width": 390, "height": 844}  # the phone viewport, in CSS pixels

__all__ = ["receiver"]  # the webhook receiver fixture


@pytest.fixture(scope="module")
def base_url(web_db: str) -> Iterator[str]:
    """The app (http:// webhooks to this machine allowed) and the notification workers."""
    cfg = NotifyConfig(poll_s=0.2)
    workers = [delivery.Deliverer(web_db, cfg, channels=()),  # as start_workers, but joined
               delivery.Deliverer(web_db, cfg, channels=("email", "webhook"),
                                  queue_events=False)]
    threads = [w.start() for w in workers]
    try:
        with serving(create_app(web_db, auth=AuthConfig(failures_per_minute=10_000,
                                                        signin_requests_per_hour=10_000),
                                local_webhooks=True)) as url:
            yield url
    finally:
        for w in workers:
            w.stop.set()
        for t in threads:
            t.join(timeout=5)


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A fresh 390x844 touch page."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    yield from _watched(context.new_page())
    context.close()


def test_the_chart_shows_the_evidence_and_progress_updates_live(
        phone: Any, base_url: str, db: Conn, fleet: Fleet, open_incident: OpenIncident,
        signin: SignIn) -> None:
    opened = open_incident(component="disk:ZA1CHART", minutes_left=45)
    detected = db.execute("SELECT detected_at FROM incidents WHERE id = %s",
                          (opened.incident,)).fetchone()[0]
    write_readings(db, "web-01", "disk:ZA1CHART", "smart.attr_5_raw",
                   [(detected - timedelta(minutes=m), float(v))
                    for m, v in ((150, 0), (110, 0), (70, 2), (35, 5), (2, 8))], 1000)
    signin(phone, fleet.acme, "/status")
    card = phone.locator(f'[data-incident="{opened.incident}"]')
    expect(card).to_contain_text("Ana is on it")  # the first name, as on a call
    expect(card.locator("[data-cd]")).to_have_text(re.compile(r"^(44|45):\d\d$"))
    chart = card.locator("figure[data-chart] svg")
    expect(chart.locator("circle[data-point]")).to_have_count(5)
    expect(chart.locator("[data-threshold]")).to_have_count(1)
    expect(chart.locator("[data-detected]")).to_contain_text("detected")
    expect(card.locator("figcaption")).to_contain_text(
        "Reallocated sectors rose from 0 to 8 sectors")
    assert chart.get_attribute("aria-labelledby")  # its text alternative is the caption
    ack = card.locator('li[data-step="acknowledged"]')
    expect(ack.locator("time")).to_have_text("–")
    phone.screenshot(path=f"{SHOTS}/hg-status-evidence.png", full_page=True)
    r = httpx.post(f"{base_url}/api/v1/jobs/{opened.job}/acknowledge",
                   headers={"Authorization": f"Bearer {fleet.tech}", "Idempotency-Key": "ack-1"})
    assert r.status_code == 200, r.text
    # no reload: the stream's change event brings the new step and its time
    expect(ack.locator("time")).to_have_text(CLOCK)
    expect(ack).to_have_attribute("aria-current", "step")
    expect(card).to_contain_text("The technician has taken the job")


def test_the_customer_denies_then_grants_cage_access(
        phone: Any, base_url: str, db: Conn, fleet: Fleet, open_incident: OpenIncident,
        signin: SignIn) -> None:
    db.execute("UPDATE customers SET cage_access = 'ask' WHERE id = 'acme'")
    try:
        opened = open_incident(minutes_left=50)
        signin(phone, fleet.acme, "/status")
        card = phone.locator(f'[data-incident="{opened.incident}"]')
        expect(card).to_contain_text("Allow our technician into your cage?")
        phone.screenshot(path=f"{SHOTS}/hg-status-cage.png")
        card.get_by_role("button", name="Deny").tap()
        expect(card).to_contain_text("The clock is paused while access is denied")
        expect(card.locator("[data-cd]")).to_have_text("Paused")
        card.get_by_role("button", name="Grant access now").tap()
        expect(card).to_contain_text("You allowed our technician into your cage")
        expect(card.locator("[data-cd]")).not_to_have_text("Paused")
        row = db.execute("SELECT decision, decided_by FROM cage_decisions WHERE incident_id = %s",
                         (opened.incident,)).fetchone()
        assert row == ("granted", "customer:acme (ops@acme.example)")
        jobs = httpx.get(f"{base_url}/api/v1/jobs?mine=true",
                         headers={"Authorization": f"Bearer {fleet.tech}"}).json()["items"]
        job = next(j for j in jobs if j["id"] == opened.job)
        assert job["incident"]["cage_access"] == "granted"
        card.get_by_text("Timeline and evidence").tap()
        expect(card.locator("ol.timeline")).to_contain_text("Cage access denied")
        expect(card.locator("ol.timeline")).to_contain_text("Cage access granted")
        expect(card.locator("ol.timeline")).to_contain_text("by ops@acme.example")
    finally:
        db.execute("UPDATE customers SET cage_access = 'always' WHERE id = 'acme'")


def test_contacts_are_added_and_a_test_reaches_the_webhook(
        phone: Any, base_url: str, fleet: Fleet, signin: SignIn, receiver: str) -> None:
    signin(phone, fleet.acme, "/status")
    box = phone.locator("#contacts")
    expect(box).to_contain_text("Who we tell")
    box.locator("#new-email").fill("oncall@acme.example")
    box.get_by_role("button", name="Add").tap()
    expect(box.locator("ul.contacts")).to_contain_text("oncall@acme.example")
    box.locator("#new-hook").fill("http://hooks.example.com/x")  # not https: refused, why said
    box.get_by_role("button", name="Save").tap()
    expect(box.locator("#contact-err")).to_contain_text("must use https")
    box.locator("#new-hook").fill(receiver)
    box.get_by_role("button", name="Save").tap()
    row = box.locator("li[data-contact]", has_text="Webhook")
    expect(row).to_contain_text(receiver)
    before = len(Hook.got)
    row.get_by_role("button", name="Test").tap()
    expect(row.locator(".outcome")).to_contain_text("delivered (HTTP 204)", timeout=15_000)
    assert [h["reason"] for h in Hook.got[before:]] == ["contact_test"]
    mail = box.locator("li[data-contact]", has_text="oncall@acme.example")
    mail.get_by_role("button", name="Test").tap()  # no SMTP server here: the error is shown
    expect(mail.locator(".outcome")).to_contain_text("notify.smtp_host is not set",
                                                     timeout=15_000)
    phone.screenshot(path=f"{SHOTS}/hg-status-contacts.png", full_page=True)
