"""Customer self-service through the API (issue 16, item 4): the evidence's readings, cage
access where the contract asks, and the customer's own contacts with a test message. Real
PostgreSQL, a real HTTP server, telemetry written by the collector's own writer; the chart's
choice of metric is pure and tested on its own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from dispatcher import delivery
from dispatcher.domain import evidence
from dispatcher.fleet import FleetError, parse_fleet
from dispatcher.http.app import create_app
from dispatcher.store import outbox
from dispatcher.store.fleet import apply_fleet
from hourglass.config import AuthConfig, NotifyConfig
from tests.web.conftest import Fleet, OpenIncident, serving
from tests.web.selfservice import Hook, receiver, write_readings

Conn = psycopg.Connection[tuple[Any, ...]]
__all__ = ["receiver"]  # the webhook receiver fixture


def auth(token: str) -> dict[str, str]:
    """The bearer header."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def api(web_db: str) -> Iterator[str]:
    """The app, with http:// webhooks to this machine allowed (notify.local_webhooks)."""
    with serving(create_app(web_db, auth=AuthConfig(failures_per_minute=10_000),
                            local_webhooks=True)) as url:
        yield url


# ---- the chart's metric and line: pure ----

@pytest.mark.parametrize(("kind", "failure", "ev", "want"), [
    ("disk", "smart_failed", {"source": "event", "smart_status": "FAILED"},
     ("smart.attr_5_raw", 0.0, "above")),
    ("disk", "smart_counter_rising",
     {"attrs": {"smart.attr_197_raw": {"baseline": 2, "value": 9}}},
     ("smart.attr_197_raw", 2.0, "above")),
    ("temp", "temp_high_sustained", {"celsius": 81, "high_celsius": 75, "above_since_s": 900},
     ("temp.celsius", 75.0, "above")),
    ("fan", "fan_stopped", {"fan.rpm": 0, "zero_readings": 2}, ("fan.rpm", 0.0, "below")),
    ("dimm", "ecc_correctable_rate", {"count": 30, "window_h": 24, "threshold": 24},
     ("edac.ce_count", 24.0, "above")),
    ("disk", "smart_command_timeouts", {"smart.attr_188_raw": 9, "previous": 1},
     ("smart.attr_188_raw", 1.0, "above")),
])
def test_the_chart_names_the_metric_the_rule_acted_on(
        kind: str, failure: str, ev: dict[str, Any], want: tuple[str, float, str]) -> None:
    c = evidence.chart(kind, failure, ev)
    assert c is not None
    assert (c.metric, c.threshold, c.bad) == want


def test_no_chart_for_a_host_that_stopped_answering() -> None:
    assert evidence.chart("host", "host_down", {"last_message": "..."}) is None


def test_the_window_is_bounded_in_points() -> None:
    detected = datetime(2026, 12, 1, 10, tzinfo=UTC)
    start, end, bucket = evidence.window(detected, 6, detected + timedelta(minutes=30))
    assert (start, end, bucket) == (detected - timedelta(hours=6),
                                    detected + timedelta(minutes=30), 98)
    _, end, bucket = evidence.window(detected, 72, detected + timedelta(days=30))
    assert end == detected + timedelta(hours=72)  # 144 h from the start at most
    assert 144 * 3600 / bucket <= evidence.MAX_POINTS


# ---- readings ----

def test_readings_show_the_rise_to_detection_with_the_line(
        api: str, db: Conn, fleet: Fleet, open_incident: OpenIncident) -> None:
    opened = open_incident(component="disk:ZA1OLD")
    detected = db.execute("SELECT detected_at FROM incidents WHERE id = %s",
                          (opened.incident,)).fetchone()[0]
    series = [(detected - timedelta(minutes=m), float(v))
              for m, v in ((120, 0), (90, 0), (60, 2), (30, 5), (1, 8))]
    write_readings(db, "web-01", "disk:ZA1OLD", "smart.attr_5_raw", series, 1)
    write_readings(db, "web-01", "disk:OTHER", "smart.attr_5_raw",  # another disk: not shown
                   [(detected - timedelta(minutes=10), 99.0)], 100)
    r = httpx.get(f"{api}/api/v1/incidents/{opened.incident}/readings?hours=3",
                  headers=auth(fleet.acme))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["metric"], body["label"], body["threshold"], body["bad"]) == (
        "smart.attr_5_raw", "Reallocated sectors", 0.0, "above")
    assert [p["value"] for p in body["points"]] == [0.0, 0.0, 2.0, 5.0, 8.0]
    assert body["detected_at"] is not None
    assert len(body["points"]) <= evidence.MAX_POINTS
    # another customer cannot tell it exists; a bad window says what to do
    other = httpx.get(f"{api}/api/v1/incidents/{opened.incident}/readings",
                      headers=auth(fleet.globex))
    missing = httpx.get(f"{api}/api/v1/incidents/987654321/readings", headers=auth(fleet.globex))
    assert (other.status_code, missing.status_code) == (404, 404)
    bad = httpx.get(f"{api}/api/v1/incidents/{opened.incident}/readings?hours=1000",
                    headers=auth(fleet.acme))
    assert bad.status_code == 422
    assert "hours" in bad.json()["detail"]
    tech = httpx.get(f"{api}/api/v1/incidents/{opened.incident}/readings",
                     headers=auth(fleet.tech))
    assert tech.status_code == 200


# ---- cage access ----

def test_cage_access_is_asked_only_where_the_contract_says_so() -> None:
    base = {"sites": [{"id": "iad1", "name": "Ashburn 1"}],
            "customers": [{"id": "acme", "name": "Acme", "contract": {"cage_access": "ask"},
                           "hosts": [{"id": "web-01", "site": "iad1", "monthly_fee": 450}]}]}
    assert parse_fleet(base, "fleet.yaml").customers[0].contract.cage_access == "ask"
    base["customers"][0]["contract"] = {"cage_access": "sometimes"}
    with pytest.raises(FleetError) as err:
        parse_fleet(base, "fleet.yaml")
    assert str(err.value).startswith("fleet.yaml: customers[0].contract.cage_access: ")
    assert "use `always`" in str(err.value)


def test_the_fleet_file_stores_the_cage_rule(pg_url: str) -> None:
    data = {"sites": [{"id": "iad1", "name": "Ashburn 1"}],
            "customers": [{"id": "acme", "name": "Acme", "contract": {"cage_access": "ask"},
                           "hosts": [{"id": "web-01", "site": "iad1", "monthly_fee": 450}]},
                          {"id": "globex", "name": "Globex",
                           "hosts": [{"id": "db-07", "site": "iad1", "monthly_fee": 900}]}]}
    with psycopg.connect(pg_url) as conn:
        apply_fleet(conn, parse_fleet(data, "fleet.yaml"))
        assert conn.execute("SELECT id, cage_access FROM customers ORDER BY id").fetchall() == [
            ("acme", "ask"), ("globex", "always")]


def test_deny_pauses_the_clock_and_tells_the_manager_grant_resumes(
        api: str, db: Conn, fleet: Fleet, open_incident: OpenIncident) -> None:
    db.execute("UPDATE customers SET cage_access = 'ask' WHERE id = 'acme'")
    db.execute("INSERT INTO contacts (person_id, channel, address) VALUES"
               " ('t-maria', 'email', 'maria@example.net') ON CONFLICT DO NOTHING")
    try:
        opened = open_incident()
        url = f"{api}/api/v1/incidents/{opened.incident}"
        assert httpx.get(url, headers=auth(fleet.acme)).json()["cage_access"] == "asked"
        # only the customer's own people decide
        for token, status in ((fleet.tech, 403), (fleet.manager, 403), (fleet.globex, 404)):
            r = httpx.post(f"{url}/cage-access", json={"decision": "grant"},
                           headers=auth(token))
            assert r.status_code == status, r.text
            assert r.json()["detail"]
        bad = httpx.post(f"{url}/cage-access", json={"decision": "maybe"},
                         headers=auth(fleet.acme))
        assert bad.status_code == 422
        assert "decision" in bad.json()["detail"]
        denied = httpx.post(f"{url}/cage-access", json={"decision": "deny"},
                            headers=auth(fleet.acme))
        assert denied.status_code == 200, denied.text
        assert (denied.json()["state"], denied.json()["cage_access"]) == ("paused", "denied")
        again = httpx.post(f"{url}/cage-access", json={"decision": "deny"},
                           headers=auth(fleet.acme))
        assert again.json()["cage_access"] == "denied"  # a repeated tap changes nothing
        told = db.execute("SELECT recipient, reason FROM outbox WHERE ref LIKE %s",
                          (f"incident:{opened.incident}:cage-denied:%",)).fetchall()
        assert told == [("t-maria", "cage_access_denied")]
        granted = httpx.post(f"{url}/cage-access", json={"decision": "grant"},
                             headers=auth(fleet.acme)).json()
        assert (granted["state"], granted["cage_access"]) == ("dispatched", "granted")
        job = httpx.get(f"{api}/api/v1/jobs?mine=true", headers=auth(fleet.tech)).json()
        mine = [j for j in job["items"] if j["id"] == opened.job]
        assert mine
        assert mine[0]["incident"]["cage_access"] == "granted"
        detail = httpx.get(url, headers=auth(fleet.manager)).json()
        kinds = [(e["kind"], (e["detail"] or {}).get("decision")) for e in detail["timeline"]]
        assert [k for k in kinds if k[0] in ("cage_access", "paused", "resumed")] == [
            ("cage_access", "denied"), ("paused", None), ("cage_access", "granted"),
            ("resumed", None)]
        assert detail["cage_decision"]["by"] == "customer:acme"
    finally:
        db.execute("UPDATE customers SET cage_access = 'always' WHERE id = 'acme'")


def test_no_cage_question_where_the_contract_lets_us_in(
        api: str, fleet: Fleet, open_incident: OpenIncident) -> None:
    opened = open_incident()
    url = f"{api}/api/v1/incidents/{opened.incident}"
    assert httpx.get(url, headers=auth(fleet.acme)).json()["cage_access"] == "not_needed"
    r = httpx.post(f"{url}/cage-access", json={"decision": "deny"}, headers=auth(fleet.acme))
    assert r.status_code == 409
    assert "without asking" in r.json()["detail"]


# ---- contacts ----

@pytest.mark.parametrize(("channel", "address", "words"), [
    ("email", "not-an-address", "not an email address"),
    ("email", "a" * 250 + "@example.com", "not an email address"),
    ("webhook", "http://hooks.example.com/x", "must use https"),
    ("webhook", "https://user:pw@hooks.example.com/x", "user or password"),
    ("webhook", "ftp://hooks.example.com/x", "not a web address"),
    ("webhook", "https://10.1.2.3/x", "private address"),
    ("webhook", "https://169.254.169.254/latest", "private address"),
    ("webhook", "https://printer.localhost:8443/x", "private address"),
    ("webhook", "https://hooks.example.com:99999/x", "not a URL"),
    ("webhook", "https://" + "a" * 2000 + ".com/", "at most 2000"),
    ("pager", "555-1234", "channel"),
])
def test_bad_contacts_are_refused_with_what_to_do(
        api: str, fleet: Fleet, channel: str, address: str, words: str) -> None:
    r = httpx.post(f"{api}/api/v1/contacts", json={"channel": channel, "address": address},
                   headers=auth(fleet.acme))
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]


def test_contacts_are_the_customers_own_and_a_test_is_delivered(
        api: str, web_db: str, db: Conn, fleet: Fleet, receiver: str,
        open_incident: OpenIncident) -> None:
    add = {"channel": "email", "address": " Ops@Acme.example "}
    first = httpx.post(f"{api}/api/v1/contacts", json=add, headers=auth(fleet.acme))
    again = httpx.post(f"{api}/api/v1/contacts", json=add, headers=auth(fleet.acme))
    assert first.status_code == 200, first.text
    assert first.json()["id"] == again.json()["id"]  # the same address again: one contact
    assert first.json()["address"] == "ops@acme.example"
    hook = httpx.post(f"{api}/api/v1/contacts", json={"channel": "webhook", "address": receiver},
                      headers=auth(fleet.acme)).json()
    for token, status in ((fleet.tech, 403), (fleet.manager, 403)):
        r = httpx.post(f"{api}/api/v1/contacts", json=add, headers=auth(token))
        assert r.status_code == status
    # globex sees none of acme's, and cannot test or remove one
    assert httpx.get(f"{api}/api/v1/contacts", headers=auth(fleet.globex)).json()["items"] == []
    for path in ("test", "remove"):
        r = httpx.post(f"{api}/api/v1/contacts/{hook['id']}/{path}", headers=auth(fleet.globex))
        assert r.status_code == 404, r.text
    shown = httpx.get(f"{api}/api/v1/contacts?customer=acme", headers=auth(fleet.manager))
    assert {c["channel"] for c in shown.json()["items"]} == {"email", "webhook"}
    tested = httpx.post(f"{api}/api/v1/contacts/{hook['id']}/test", headers=auth(fleet.acme))
    assert tested.status_code == 202
    assert tested.json()["last_test"]["state"] == "pending"
    hurry = httpx.post(f"{api}/api/v1/contacts/{hook['id']}/test", headers=auth(fleet.acme))
    assert hurry.status_code == 429  # one test per contact per 10 s
    assert "wait" in hurry.json()["detail"]
    with psycopg.connect(web_db, autocommit=True) as conn:
        delivery.deliver_due(conn, NotifyConfig(), lambda: datetime.now(UTC), "test")
    after = httpx.get(f"{api}/api/v1/contacts", headers=auth(fleet.acme)).json()["items"]
    test = next(c for c in after if c["id"] == hook["id"])["last_test"]
    assert (test["state"], test["outcome"], test["status_code"]) == ("sent", "sent", 204)
    assert Hook.got
    assert Hook.got[-1]["reason"] == "contact_test"
    # the customer's contacts hear of its incidents like its account team does
    team = outbox.account_team(db, "acme")
    assert "customer:acme:email:ops@acme.example" in team.customer
    opened = open_incident()
    with psycopg.connect(web_db, autocommit=True) as conn:
        while outbox.notify_pass(conn, datetime.now(UTC)):
            pass
    told = db.execute("SELECT recipient, channel, reason FROM outbox WHERE ref LIKE %s"
                      " AND recipient LIKE 'customer:%%' ORDER BY 1",
                      (f"incident:{opened.incident}:%",)).fetchall()
    assert told == [("customer:acme:email:ops@acme.example", "email", "incident_opened"),
                    ("customer:acme:webhook", "webhook", "incident_opened")]
    removed = httpx.post(f"{api}/api/v1/contacts/{first.json()['id']}/remove",
                         headers=auth(fleet.acme))
    assert [c["channel"] for c in removed.json()["items"]] == ["webhook"]
