"""The web pages in real headless Chromium against the real app and PostgreSQL."""

from __future__ import annotations

import os
import re
import tempfile
from typing import Any

import psycopg
import pytest
from playwright.sync_api import expect

from tests.conftest import eventually
from tests.web.conftest import Fleet, OpenIncident, SignIn

#: Screenshots are for looking at, not for the repository: the system temp dir, or
#: HOURGLASS_SHOTS to keep them somewhere else.
SHOTS = os.environ.get("HOURGLASS_SHOTS", tempfile.gettempdir())
Conn = psycopg.Connection[tuple[Any, ...]]


def box(locator: Any) -> dict[str, float]:
    """The element's box, waiting out a re-render (a list the live stream redraws detaches
    the element for a moment, and Playwright then answers None)."""
    got: dict[str, float] = eventually(locator.bounding_box, 5, "the element laid out", 0.05)
    return got


def job_state(db: Conn, job: int) -> tuple[str, str]:
    """(job state, incident state) as stored."""
    row = db.execute("SELECT j.state, i.state FROM jobs j JOIN incidents i ON i.id = j.incident_id"
                     " WHERE j.id = %s", (job,)).fetchone()
    assert row is not None
    return row[0], row[1]


def test_tech_page_shows_job_with_countdown_and_acknowledge(
        phone: Any, base_url: str, fleet: Fleet, open_incident: OpenIncident,
        signin: SignIn) -> None:
    opened = open_incident(minutes_left=42)
    signin(phone, fleet.tech, "/tech")
    card = phone.locator(f'[data-job="{opened.job}"]')
    expect(card).to_be_visible()
    expect(card.locator("[data-cd]")).to_have_text(re.compile(r"^4[12]:\d\d$"))
    expect(card).to_contain_text("Disk in slot sda failed SMART health check")
    expect(card.locator(".where")).to_contain_text("r12")
    button = card.get_by_role("button", name="Acknowledge")
    expect(button).to_be_visible()
    box = None
    for _ in range(50):  # a live refresh redraws the list: the button may be replaced between
        box = button.bounding_box()  # the check and the measure (None), so measure the new one
        if box is not None:
            break
        phone.wait_for_timeout(100)
    assert box is not None
    assert box["height"] >= 56  # a thumb-sized target
    assert box["width"] >= 180
    assert "token" not in phone.url  # the secret left the address bar
    phone.screenshot(path=f"{SHOTS}/hg-tech.png")

    phone.goto(f"{base_url}/tech")  # the token was kept on the phone
    expect(phone.locator(f'[data-job="{opened.job}"]')).to_be_visible()


def test_tech_countdown_turns_red_under_15_minutes(
        phone: Any, base_url: str, fleet: Fleet, open_incident: OpenIncident,
        signin: SignIn) -> None:
    opened = open_incident(minutes_left=9)
    signin(phone, fleet.tech, "/tech")
    countdown = phone.locator(f'[data-job="{opened.job}"] [data-cd]')
    expect(countdown).to_have_class(re.compile(r"\bred\b"))
    first = countdown.text_content()
    expect(countdown).not_to_have_text(first, timeout=3000)  # ticks client-side


def test_tapping_acknowledge_changes_the_job_and_shows_on_site(
        phone: Any, base_url: str, fleet: Fleet, db: Conn, open_incident: OpenIncident,
        signin: SignIn) -> None:
    opened = open_incident()
    signin(phone, fleet.tech, "/tech")
    card = phone.locator(f'[data-job="{opened.job}"]')
    card.get_by_role("button", name="Acknowledge").tap()
    expect(card.get_by_role("button", name="On site")).to_be_visible()
    assert job_state(db, opened.job) == ("acknowledged", "acknowledged")
    phone.screenshot(path=f"{SHOTS}/hg-tech-acknowledged.png")


def test_replaced_asks_for_the_new_serial(
        phone: Any, base_url: str, fleet: Fleet, db: Conn, open_incident: OpenIncident,
        signin: SignIn) -> None:
    opened = open_incident(state="acknowledged")
    signin(phone, fleet.tech, "/tech")
    card = phone.locator(f'[data-job="{opened.job}"]')
    card.get_by_role("button", name="On site").tap()
    card.get_by_role("button", name="Replaced…").tap()
    phone.locator("#serial").fill("ZA9NEW01")
    phone.screenshot(path=f"{SHOTS}/hg-tech-serial.png")
    phone.get_by_role("button", name="Save serial").tap()
    expect(card).to_contain_text("Waiting for telemetry")
    row = db.execute("SELECT state, new_serial FROM jobs WHERE id = %s", (opened.job,)).fetchone()
    assert row == ("replaced", "ZA9NEW01")


def test_a_tap_while_offline_is_sent_once_the_signal_returns(
        phone: Any, base_url: str, fleet: Fleet, db: Conn, open_incident: OpenIncident,
        signin: SignIn) -> None:
    opened = open_incident()
    signin(phone, fleet.tech, "/tech")
    card = phone.locator(f'[data-job="{opened.job}"]')
    expect(card.get_by_role("button", name="Acknowledge")).to_be_visible()
    phone.context.set_offline(True)
    card.get_by_role("button", name="Acknowledge").tap()
    expect(card.locator("[data-note]")).to_contain_text("Sending")
    expect(phone.locator("#banner")).to_contain_text("No connection")
    expect(phone.locator(f'[data-job="{opened.job}"]')).to_be_visible()  # last data stays
    phone.screenshot(path=f"{SHOTS}/hg-tech-offline.png")
    assert job_state(db, opened.job)[0] == "dispatched"
    phone.context.set_offline(False)
    expect(card.get_by_role("button", name="On site")).to_be_visible(timeout=20000)
    assert job_state(db, opened.job)[0] == "acknowledged"


def test_a_lost_answer_is_retried_with_the_same_key_and_applied_once(
        phone: Any, base_url: str, fleet: Fleet, db: Conn, open_incident: OpenIncident,
        signin: SignIn) -> None:
    opened = open_incident()
    keys: list[str | None] = []

    def lose_first_answer(route: Any) -> None:
        keys.append(route.request.headers.get("idempotency-key"))
        if len(keys) == 1:
            route.fetch()  # the server does the work...
            route.abort("connectionreset")  # ...but the answer never reaches the phone
        else:
            route.continue_()

    phone.route(f"**/api/v1/jobs/{opened.job}/acknowledge", lose_first_answer)
    signin(phone, fleet.tech, "/tech")
    card = phone.locator(f'[data-job="{opened.job}"]')
    card.get_by_role("button", name="Acknowledge").tap()
    expect(card.get_by_role("button", name="On site")).to_be_visible(timeout=10000)
    assert len(keys) == 2
    assert keys[0] == keys[1]
    assert keys[0]
    events = db.execute("SELECT count(*) FROM incident_events WHERE incident_id = %s"
                        " AND kind = 'acknowledged'", (opened.incident,)).fetchone()
    assert events == (1,)


def test_decline_asks_for_a_reason(
        phone: Any, base_url: str, fleet: Fleet, db: Conn, open_incident: OpenIncident,
        signin: SignIn) -> None:
    opened = open_incident()
    signin(phone, fleet.tech, "/tech")
    phone.locator(f'[data-job="{opened.job}"]').get_by_role("button", name="Decline").tap()
    phone.get_by_role("button", name="No spare part on site").tap()
    phone.get_by_role("button", name="Decline job").tap()
    expect(phone.locator(f'[data-job="{opened.job}"]')).to_have_count(0)
    assert job_state(db, opened.job) == ("declined", "detected")


def test_status_page_shows_own_incident_and_not_another_customers(
        phone: Any, base_url: str, fleet: Fleet, open_incident: OpenIncident,
        signin: SignIn) -> None:
    mine = open_incident(host="web-01", slot="sdb", minutes_left=30)
    theirs = open_incident(host="db-07", slot="sdc")
    signin(phone, fleet.acme, "/status")
    card = phone.locator(f'[data-incident="{mine.incident}"]')
    expect(card).to_be_visible()
    expect(card).to_contain_text("Disk in slot sdb failed SMART health check")
    expect(card).to_contain_text("Ana is on it")  # the first name, as on a call
    expect(card.locator("[data-cd]")).to_have_text(re.compile(r"^(29|30):\d\d$"))
    expect(phone.locator(f'[data-incident="{theirs.incident}"]')).to_have_count(0)
    expect(phone.get_by_text("db-07")).to_have_count(0)
    phone.screenshot(path=f"{SHOTS}/hg-status.png")
    card.get_by_text("Timeline and evidence").tap()
    expect(card.locator("ol.timeline")).to_contain_text("Failure detected by monitoring")
    card.screenshot(path=f"{SHOTS}/hg-status-timeline.png")


def test_customer_confirms_a_verified_fix_and_answers_the_survey(
        phone: Any, base_url: str, fleet: Fleet, db: Conn, open_incident: OpenIncident,
        signin: SignIn) -> None:
    opened = open_incident(host="web-01", slot="sdd", state="verified", minutes_left=-7)
    db.execute("UPDATE incidents SET verified_at = deadline + interval '7 minutes' WHERE id = %s",
               (opened.incident,))
    db.execute("INSERT INTO credits (incident_id, customer_id, amount, currency, percent,"
               " periods, late_seconds, policy, issued_at) VALUES (%s, 'acme', 22.50, 'USD', 5,"
               " 1, 420, '{}', now())", (opened.incident,))
    signin(phone, fleet.acme, "/status")
    card = phone.locator(f'[data-incident="{opened.incident}"]')
    expect(card).to_contain_text("Fixed 7 min late — credit 22.50 USD issued")
    card.get_by_role("button", name="Confirm it's fixed").tap()
    expect(card.get_by_role("button", name="9 out of 10")).to_be_visible()
    row = db.execute("SELECT state FROM incidents WHERE id = %s", (opened.incident,)).fetchone()
    assert row == ("closed",)
    card.get_by_role("button", name="9 out of 10").tap()
    card.locator("textarea").fill("Quick and clear.")
    card.screenshot(path=f"{SHOTS}/hg-status-survey.png")
    card.get_by_role("button", name="Send rating").tap()
    expect(card).to_contain_text("you rated us 9/10")
    survey = db.execute("SELECT score, comment FROM surveys WHERE incident_id = %s",
                        (opened.incident,)).fetchone()
    assert survey == (9, "Quick and clear.")


def test_ops_page_lists_open_incidents_by_deadline(
        desktop: Any, base_url: str, fleet: Fleet, open_incident: OpenIncident,
        signin: SignIn) -> None:
    later = open_incident(host="db-07", slot="sde", minutes_left=50)
    sooner = open_incident(host="web-01", slot="sdf", state="detected", minutes_left=5)
    signin(desktop, fleet.manager, "/ops")
    rows = desktop.locator("tr[data-incident]")
    expect(desktop.locator(f'tr[data-incident="{later.incident}"]')).to_be_visible()
    ids = [int(x) for x in rows.evaluate_all("rs => rs.map(r => r.dataset.incident)")]
    assert ids.index(sooner.incident) < ids.index(later.incident)
    expect(desktop.locator(f'tr[data-incident="{sooner.incident}"]')).to_have_class(
        re.compile(r"\bamber\b"))
    expect(desktop.locator('[data-count="unassigned"] b')).not_to_have_text("0")
    desktop.screenshot(path=f"{SHOTS}/hg-ops.png", full_page=True)


@pytest.mark.parametrize("page_path", ["tech", "status", "ops"])
def test_a_page_without_a_token_says_what_to_do(phone: Any, base_url: str, page_path: str) -> None:
    phone.goto(f"{base_url}/{page_path}")
    help_box = phone.locator("#help")
    expect(help_box).to_be_visible()
    expect(help_box).to_contain_text("not signed in")
    expect(help_box.get_by_role("link", name="ask for a new link")).to_have_attribute(
        "href", "/signin")
    phone.screenshot(path=f"{SHOTS}/hg-{page_path}-signed-out.png")


def test_an_ended_or_forged_session_shows_how_to_sign_in(phone: Any, base_url: str) -> None:
    phone.context.add_cookies([{"name": "hg_session", "value": "hgs_forged", "url": base_url}])
    phone.goto(f"{base_url}/tech")
    expect(phone.locator("#help")).to_contain_text("session has ended")
    assert phone.evaluate("Object.keys(localStorage).filter((k) => k.includes('token'))") == []


def test_status_page_shows_what_went_wrong_on_a_late_fix(
        phone: Any, base_url: str, fleet: Fleet, db: Conn, open_incident: OpenIncident,
        signin: SignIn) -> None:
    late = open_incident(host="web-01", slot="sdg", state="verified", minutes_left=-20)
    db.execute("UPDATE incidents SET verified_at = deadline + interval '20 minutes' WHERE id = %s",
               (late.incident,))
    db.execute("INSERT INTO reviews (incident_id, cause, author, created_at, updated_at) VALUES"
               " (%s, 'The spare disk was at another site.', 'manager:t-maria', now(), now())",
               (late.incident,))
    db.execute("INSERT INTO review_items (incident_id, n, text, owner, due_at, done_at) VALUES"
               " (%s, 1, 'Two spares of this model at iad1', 't-maria', now(), now()),"
               " (%s, 2, 'Low-stock alert per site', 't-maria', now() + interval '7 days', NULL)",
               (late.incident, late.incident))
    signin(phone, fleet.acme, "/status")
    block = phone.locator(f'[data-review="{late.incident}"]')
    expect(block).to_contain_text("What went wrong and what we are doing")
    expect(block).to_contain_text("The spare disk was at another site.")
    expect(block.locator("li.done")).to_contain_text("✓ Two spares of this model at iad1")
    expect(block.locator("li:not(.done)")).to_contain_text("Low-stock alert per site")
    phone.locator(f'[data-incident="{late.incident}"]').screenshot(
        path=f"{SHOTS}/hg-status-review.png")


def test_ops_page_counts_open_claims_and_overdue_reviews(
        desktop: Any, base_url: str, fleet: Fleet, db: Conn, open_incident: OpenIncident,
        signin: SignIn) -> None:
    open_incident(host="web-01", slot="sdh", minutes_left=-3 * 24 * 60)  # 3 days late, no review
    db.execute("INSERT INTO claims (customer_id, text, opened_at, updated_at)"
               " VALUES ('acme', 'Nobody called back.', now(), now())")
    signin(desktop, fleet.manager, "/ops")
    expect(desktop.locator('[data-count="open claims"] b')).not_to_have_text("0")
    expect(desktop.locator('[data-count="reviews overdue"]')).to_have_class(re.compile(r"\bred\b"))


def test_tech_page_lists_planned_work_below_sla_jobs_quietly(
        phone: Any, base_url: str, fleet: Fleet, db: Conn, open_incident: OpenIncident,
        signin: SignIn) -> None:
    sla = open_incident(minutes_left=40)
    (pid,) = db.execute(
        "INSERT INTO predictions (host_id, site_id, customer_id, component, kind, prediction,"
        " rule, slot, detected_at, last_seen) VALUES ('web-01', 'iad1', 'acme', 'disk:PRED1',"
        " 'disk', 'smart_counter_rising', 'smart_baseline', 'sdc', now(), now())"
        " RETURNING id").fetchone() or (0,)
    (job,) = db.execute("INSERT INTO proactive_jobs (prediction_id, site_id, technician_id,"
                        " planned_at) VALUES (%s, 'iad1', 't-ana', now()) RETURNING id",
                        (pid,)).fetchone() or (0,)
    signin(phone, fleet.tech, "/tech")
    section = phone.locator("#planned")
    expect(section).to_contain_text("Planned work (no clock)")
    card = section.locator(f'[data-pjob="{job}"]')
    expect(card).to_contain_text("No deadline")
    expect(card.locator("[data-cd]")).to_have_count(0)  # no countdown on planned work
    sla_card = phone.locator(f'[data-job="{sla.job}"]')
    expect(sla_card).to_be_visible()  # rendered before it is measured (the list loads apart)
    sla_box = box(sla_card)
    assert sla_box["y"] < box(section)["y"]  # the SLA job is listed first
    last_sla = box(phone.locator("article.job").last)
    assert last_sla["y"] < box(section)["y"]
    button = card.get_by_role("button", name="Acknowledge")
    expect(button).to_be_visible()
    assert button.bounding_box()["height"] >= 56  # the same thumb-sized targets
    phone.screenshot(path=f"{SHOTS}/hg-tech-planned.png", full_page=True)

    phone.context.set_offline(True)  # a tap without signal is kept and retried with its key
    button.tap()
    expect(card.locator("[data-note]")).to_contain_text("Acknowledge")
    phone.context.set_offline(False)
    expect(card.get_by_role("button", name="Done…")).to_be_visible(timeout=20000)
    assert db.execute("SELECT state FROM proactive_jobs WHERE id = %s",
                      (job,)).fetchone() == ("acknowledged",)

    card.get_by_role("button", name="Done…").tap()
    phone.locator("#pserial").fill("ZA7NEW")
    phone.locator("#pnote").fill("swapped before it failed")
    phone.get_by_role("button", name="Save done").tap()
    expect(card).to_have_count(0)
    row = db.execute("SELECT pj.state, pj.new_serial, p.state FROM proactive_jobs pj JOIN"
                     " predictions p ON p.id = pj.prediction_id WHERE pj.id = %s",
                     (job,)).fetchone()
    assert row == ("done", "ZA7NEW", "done")
    assert job_state(db, sla.job) == ("dispatched", "dispatched")  # the SLA job is untouched


def test_status_page_shows_an_open_facility_incident_on_the_customers_hosts(
        phone: Any, base_url: str, fleet: Fleet, db: Conn, signin: SignIn) -> None:
    db.execute("INSERT INTO hosts (id, customer_id, site_id, room, rack) VALUES"
               " ('r12-b', 'acme', 'iad1', 'A', 'r12'), ('r40-a', 'globex', 'iad1', 'C', 'r40')")
    rows = db.execute(
        "INSERT INTO facility_incidents (site_id, room, rack, cause, detected_at, deadline,"
        " rack_hosts) VALUES ('iad1', 'A', 'r12', 'power', now() - interval '10 minutes',"
        " now() + interval '50 minutes', 3), ('iad1', 'C', 'r40', 'network', now(),"
        " now() + interval '1 hour', 1) RETURNING id").fetchall()
    mine, theirs = rows[0][0], rows[1][0]
    db.execute("INSERT INTO facility_incident_hosts (facility_id, host_id, customer_id,"
               " last_message) VALUES (%s, 'web-01', 'acme', now()), (%s, 'r12-b', 'acme', now()),"
               " (%s, 'r40-a', 'globex', now())", (mine, mine, theirs))
    signin(phone, fleet.acme, "/status")
    banner = phone.locator(f'[data-facility="{mine}"]')
    expect(banner).to_contain_text(re.compile(
        r"Rack r12 in Ashburn 1 lost power at \d\d:\d\d"))
    expect(banner).to_contain_text(re.compile(
        r"2 of your servers are affected — we are on it, deadline \d\d:\d\d"))
    expect(banner).to_contain_text(re.compile(r"(49|50) min left"))
    expect(phone.locator(f'[data-facility="{theirs}"]')).to_have_count(0)
    expect(phone.get_by_text("r40")).to_have_count(0)
    expect(phone.get_by_text("All hardware healthy")).to_have_count(0)
    phone.screenshot(path=f"{SHOTS}/hg-status-facility.png")
    # Another rack goes down while the page is open: the event stream brings it, well before
    # the page's own 10 s poll would (the stream's version counts facility rows too).
    db.execute("INSERT INTO hosts (id, customer_id, site_id, room, rack) VALUES"
               " ('r07-a', 'acme', 'iad1', 'B', 'r07')")
    (net,) = db.execute(
        "INSERT INTO facility_incidents (site_id, room, rack, cause, detected_at, deadline,"
        " rack_hosts) VALUES ('iad1', 'B', 'r07', 'network', now(), now() + interval '1 hour',"
        " 1) RETURNING id").fetchone() or (0,)
    db.execute("INSERT INTO facility_incident_hosts (facility_id, host_id, customer_id,"
               " last_message) VALUES (%s, 'r07-a', 'acme', now())", (net,))
    expect(phone.locator(f'[data-facility="{net}"]')).to_contain_text(
        "Rack r07 in Ashburn 1 lost its network connection", timeout=8000)
    expect(phone.locator(f'[data-facility="{net}"]')).to_contain_text(
        "1 of your servers is affected")
    db.execute("UPDATE facility_incidents SET state = 'resolved', resolved_at = now()"
               " WHERE id IN (%s, %s, %s)", (mine, theirs, net))  # other tests see no rack


def test_status_banner_names_a_pdu_or_a_switch(
        phone: Any, base_url: str, fleet: Fleet, db: Conn, signin: SignIn) -> None:
    ids = [r[0] for r in db.execute(
        "INSERT INTO facility_incidents (site_id, room, rack, scope, scope_id, cause,"
        " detected_at, deadline, rack_hosts) VALUES ('iad1', 'A', 'r12', 'pdu',"
        " 'iad1-r12-pdu-a', 'power', now(), now() + interval '1 hour', 12), ('iad1', 'A',"
        " 'r12', 'switch', 'sw-12', 'network', now(), now() + interval '1 hour', 20)"
        " RETURNING id").fetchall()]
    db.execute("INSERT INTO facility_incident_hosts (facility_id, host_id, customer_id,"
               " last_message) VALUES (%s, 'web-01', 'acme', now()), (%s, 'web-01', 'acme',"
               " now())", ids)
    signin(phone, fleet.acme, "/status")
    expect(phone.locator(f'[data-facility="{ids[0]}"]')).to_contain_text(re.compile(
        r"PDU iad1-r12-pdu-a in Ashburn 1 lost power at \d\d:\d\d"))
    expect(phone.locator(f'[data-facility="{ids[1]}"]')).to_contain_text(re.compile(
        r"Switch sw-12 in Ashburn 1 lost network at \d\d:\d\d"))
    db.execute("UPDATE facility_incidents SET state = 'resolved', resolved_at = now()"
               " WHERE id = ANY(%s)", (ids,))  # other tests see no outage


def test_ops_page_shows_planned_work_and_facility_incidents(
        desktop: Any, base_url: str, fleet: Fleet, db: Conn, signin: SignIn) -> None:
    (pid,) = db.execute(
        "INSERT INTO predictions (host_id, site_id, customer_id, component, kind, prediction,"
        " rule, slot, detected_at, last_seen) VALUES ('db-07', 'iad1', 'globex', 'disk:OPS1',"
        " 'disk', 'smart_counter_rising', 'smart_baseline', 'sdb', now(), now())"
        " RETURNING id").fetchone() or (0,)
    (job,) = db.execute("INSERT INTO proactive_jobs (prediction_id, site_id, technician_id,"
                        " planned_at) VALUES (%s, 'iad1', 't-ana', now() - interval '3 hours')"
                        " RETURNING id", (pid,)).fetchone() or (0,)
    db.execute("INSERT INTO hosts (id, customer_id, site_id, room, rack) VALUES"
               " ('r21-a', 'acme', 'iad1', 'D', 'r21'), ('r21-b', 'globex', 'iad1', 'D', 'r21')"
               " ON CONFLICT DO NOTHING")
    (rack,) = db.execute(
        "INSERT INTO facility_incidents (site_id, room, rack, cause, detected_at, deadline,"
        " rack_hosts) VALUES ('iad1', 'D', 'r21', 'power', now() - interval '12 minutes',"
        " now() + interval '48 minutes', 6) RETURNING id").fetchone() or (0,)
    db.execute("INSERT INTO facility_incident_hosts (facility_id, host_id, customer_id,"
               " last_message) VALUES (%s, 'r21-a', 'acme', now()), (%s, 'r21-b', 'globex',"
               " now())", (rack, rack))
    try:
        db.execute(  # a PDU outage names the PDU, and the rack it sits in
            "INSERT INTO facility_incidents (site_id, room, rack, scope, scope_id, cause,"
            " detected_at, deadline, rack_hosts) VALUES ('iad1', 'D', 'r21', 'pdu',"
            " 'iad1-r21-pdu-b', 'power', now(), now() + interval '1 hour', 6)")
        signin(desktop, fleet.manager, "/ops")
        row = desktop.locator(f'tr[data-pjob="{job}"]')
        expect(row).to_contain_text("db-07")
        expect(row).to_contain_text("smart counter rising")
        expect(row).to_contain_text("Ana Souza")
        expect(row).to_contain_text("planned")
        expect(row.locator("[data-age]")).to_contain_text("3 h ago")
        expect(desktop.locator('[data-count="planned work"] b')).not_to_have_text("0")
        expect(desktop.locator("#planned-title")).to_have_text("Planned work (no clock)")
        outage = desktop.locator(f'tr[data-facility="{rack}"]')
        expect(outage).to_contain_text("Ashburn 1")
        expect(outage).to_contain_text("rack r21")
        expect(outage).to_contain_text("power lost")
        expect(outage.locator("[data-hosts]")).to_contain_text("2 down")
        expect(outage.locator("[data-hosts]")).to_contain_text("of 6 on the rack")
        countdown = outage.locator("[data-cd]")
        expect(countdown).to_have_text(re.compile(r"^4[78]:\d\d$"))
        first = countdown.text_content()
        expect(countdown).not_to_have_text(first or "", timeout=3000)  # ticks client-side
        expect(desktop.locator('[data-count="facility incidents"]')).to_have_class(
            re.compile(r"\bred\b"))
        # readable at a glance: both lists fit the desktop's width, no sideways scrolling
        for table in ("#planned", "#facility"):
            box = desktop.locator(table).bounding_box()
            assert box is not None
            assert box["x"] + box["width"] <= 1280
        pdu = desktop.locator("tr[data-facility]", has_text="PDU iad1-r21-pdu-b")
        expect(pdu).to_contain_text("room D · rack r21")
        expect(pdu).to_contain_text("of 6 on the PDU")
        desktop.screenshot(path=f"{SHOTS}/hg-ops-planned-facility.png", full_page=True)
    finally:  # other tests of this module see no planned job and no open rack
        db.execute("UPDATE proactive_jobs SET state = 'dismissed', finished_at = now()"
                   " WHERE id = %s", (job,))
        db.execute("UPDATE facility_incidents SET state = 'resolved', resolved_at = now()"
                   " WHERE state = 'open' AND rack = 'r21'")


def test_ops_page_alerts_when_a_collector_hears_nothing(
        desktop: Any, base_url: str, fleet: Fleet, db: Conn, signin: SignIn) -> None:
    """Our own outage is the operator's alert: a red banner with the collector's reason."""
    db.execute("INSERT INTO collector_status (client_id, ready, detection_paused, reasons,"
               " updated_at) VALUES ('hg-collector-a', false, true, %s, now()),"
               " ('hg-collector-b', true, false, '{}', now())",
               (["broker disconnected"],))
    try:
        signin(desktop, fleet.manager, "/ops")
        alert = desktop.locator("[data-ingest]")
        expect(alert).to_contain_text("Ingest impaired: hg-collector-a: broker disconnected")
        expect(alert).to_contain_text("Host-down and facility detection wait for it")
        expect(desktop.locator("[data-ingest]")).to_have_attribute("role", "alert")
        desktop.screenshot(path=f"{SHOTS}/hg-ops-ingest-alert.png", full_page=True)
        db.execute("UPDATE collector_status SET ready = true, detection_paused = false,"
                   " reasons = '{}'")
        desktop.reload()
        expect(desktop.locator('[data-count="open"]')).to_be_visible()
        expect(desktop.locator("[data-ingest]")).to_have_count(0)
        expect(desktop.locator("[data-gaps]")).to_have_count(0)
        # work flows, but messages the broker lost were not resent: an alert of its own
        db.execute("INSERT INTO ingest_gaps (host_id, first_seq, last_seq, seen_at, missing,"
                   " requests, next_request_at, state, closed_at, reason) VALUES ('web-01', 40,"
                   " 41, now(), 2, 6, now(), 'unfilled', now(), %s)",
                   ("2 of seqs 40-41 not resent within 15 min, asked 6 times; the host is "
                    "offline",))
        desktop.reload()
        gaps = desktop.locator("[data-gaps]")
        expect(gaps).to_contain_text("1 message gap not filled (2 messages")
        expect(gaps).to_contain_text("web-01 · seq 40–41 · 2 of seqs 40-41 not resent")
    finally:
        db.execute("DELETE FROM collector_status")
        db.execute("DELETE FROM ingest_gaps")
