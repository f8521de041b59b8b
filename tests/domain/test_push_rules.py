"""Web Push's pure rules: which subscriptions are usable, and what a push carries.

Table-driven cases for the endpoint and key checks and the payload's contract with the
service worker; property tests (marker fuzz) hold the checks to their definition on
hostile input: a key is accepted exactly when it is a P-256 point on the curve.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.domain import push

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def browser_keys() -> tuple[str, str]:
    """A (p256dh, auth) pair as a browser's PushSubscription gives it."""
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return push.b64url_encode(point), push.b64url_encode(b"0123456789abcdef")


P256DH, AUTH = browser_keys()


@pytest.mark.parametrize(("endpoint", "local_ok", "why"), [
    ("https://fcm.googleapis.com/fcm/send/abc:APA91b", False, None),
    ("https://updates.push.services.mozilla.com/wpush/v2/gAAAA", False, None),
    ("http://127.0.0.1:8123/push/1", True, None),
    ("http://localhost:8123/push/1", True, None),
    ("http://127.0.0.1:8123/push/1", False, "push.allow_http_localhost"),
    ("http://push.example.com/x", True, "https"),
    ("ftp://push.example.com/x", True, "https"),
    ("https://user:pw@push.example.com/x", False, "user name or password"),
    ("https://user@push.example.com/x", False, "user name or password"),
    ("https:///no-host", False, "no host"),
    ("https://push.example.com:99999/x", False, "not a URL"),
    ("https://push.example.com/" + "a" * 1000, False, "at most 1000"),
    ("https://push.example.com/a b", False, "spaces"),
    ("not a url", False, "no host"),
])
def test_endpoint(endpoint: str, local_ok: bool, why: str | None) -> None:
    if why is None:
        assert push.check_endpoint(endpoint, local_ok) == endpoint
    else:
        with pytest.raises(push.Refused, match=why):
            push.check_endpoint(endpoint, local_ok)


def test_a_browsers_keys_pass_and_padding_is_optional() -> None:
    push.check_keys(P256DH, AUTH)
    push.check_keys(P256DH + "=", AUTH + "==")


@pytest.mark.parametrize(("p256dh", "auth", "why"), [
    ("B" + P256DH[1:-2] + "AA", AUTH, "not a point on the P-256 curve"),
    (P256DH[:-4], AUTH, "bytes; expected the 65-byte"),
    (push.b64url_encode(b"\x02" + bytes(64)), AUTH, "65-byte uncompressed"),
    (P256DH.replace("-", "+").replace("_", "/") if ("-" in P256DH or "_" in P256DH)
     else P256DH[:-1] + "+", AUTH, "not base64url"),
    (P256DH, push.b64url_encode(bytes(15)), "keys.auth: 15 bytes"),
    (P256DH, "!!!!", "keys.auth: not base64url"),
    (push.b64url_encode(b"\x04" + b"\xff" * 64), AUTH, "not a point"),  # x, y >= p
])
def test_bad_keys(p256dh: str, auth: str, why: str) -> None:
    with pytest.raises(push.Refused, match=why):
        push.check_keys(p256dh, auth)


def test_a_job_offers_the_jobs_own_actions() -> None:
    n = push.Notice("dispatched", "[Hourglass] dispatched: incident 7: disk:Z1 on web-01",
                    "You are assigned: disk:Z1 on web-01.", "incident:7:event:40",
                    "dispatched", 7, 42)
    doc = push.payload(n, T0)
    assert doc == {
        "kind": "job", "title": "New job: incident 7: disk:Z1 on web-01",
        "body": "You are assigned: disk:Z1 on web-01.", "tag": "job-42",
        "url": "/tech#job-42", "incident": 7, "job": 42, "sent_at": "2026-11-23T09:00:00Z",
        "key": "incident:7:event:40",
        "actions": [
            {"action": "acknowledge", "title": "Acknowledge", "method": "POST",
             "path": "/api/v1/jobs/42/acknowledge", "body": None},
            {"action": "decline", "title": "Decline", "method": "POST",
             "path": "/api/v1/jobs/42/decline",
             "body": {"reason": "Declined from the notification"}}]}


@pytest.mark.parametrize(("reason", "event", "kind", "path", "url"), [
    ("dispatched", "reassigned", "reassigned", "/api/v1/jobs/42/acknowledge", "/tech#job-42"),
    ("escalated", "escalated", "escalation", "/api/v1/incidents/7/escalation/acknowledge",
     "/ops#incident-7"),
    ("breach", "escalated", "escalation", "/api/v1/incidents/7/escalation/acknowledge",
     "/ops#incident-7"),
    ("verify_timeout", "reopened", "verify_timeout", None, "/ops#incident-7"),
    ("breach_foreseen", None, "breach_foreseen", None, "/ops#incident-7"),
])
def test_kind_actions_and_url_follow_the_reason(reason: str, event: str | None, kind: str,
                                                path: str | None, url: str) -> None:
    job = 42 if kind == "reassigned" else None
    doc = push.payload(push.Notice(reason, "s", "b", "k", event, 7, job), T0)
    assert (doc["kind"], doc["url"]) == (kind, url)
    assert [a["path"] for a in doc["actions"]][:1] == ([path] if path else [])


def test_a_notice_without_an_incident_has_no_actions() -> None:
    doc = push.payload(push.Notice("low_spares", "[Hourglass] low spares at iad1: X", "b",
                                   "spare_alert:3"), T0)
    assert (doc["kind"], doc["incident"], doc["actions"], doc["url"]) == (
        "low_spares", None, [], "/ops")


def test_a_long_body_is_cut_to_the_limit_and_stays_utf8() -> None:
    n = push.Notice("escalated", "s", "é\"\n" * 3000, "k", "escalated", 7)
    raw = push.encode(push.payload(n, T0))
    assert len(raw) <= push.PAYLOAD_MAX
    assert json.loads(raw.decode())["body"].endswith("…")


@pytest.mark.fuzz
@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(min_size=0, max_size=80))
def test_any_bytes_pass_as_p256dh_exactly_when_on_the_curve(raw: bytes) -> None:
    """Accepted iff cryptography also takes it as a P-256 public key."""
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        valid = len(raw) == 65 and raw[0] == 4
    except ValueError:
        valid = False
    try:
        push.check_keys(push.b64url_encode(raw), AUTH)
        accepted = True
    except push.Refused:
        accepted = False
    assert accepted == valid


@pytest.mark.fuzz
@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.integers(min_value=1, max_value=2**256 - 1))
def test_every_real_public_key_passes(secret: int) -> None:
    """Points made from any private scalar (mod n) are accepted."""
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    key = ec.derive_private_key(secret % (n - 1) + 1, ec.SECP256R1())
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    push.check_keys(push.b64url_encode(point), AUTH)


@pytest.mark.fuzz
@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(max_size=1200), st.booleans())
def test_any_text_as_endpoint_is_refused_or_a_clean_https_url(text: str, local: bool) -> None:
    """Nothing but a short https URL without user info (or local http when allowed) passes,
    and a refusal is always a Refused with a reason, never another exception."""
    try:
        got: str | None = push.check_endpoint(text, local)
        refusal = ""
    except push.Refused as exc:
        got, refusal = None, str(exc)
    if got is None:
        assert refusal.startswith("endpoint: ")
        return
    assert got == text
    assert len(text) <= push.ENDPOINT_MAX
    assert "@" not in text.split("/")[2]
    assert text.startswith("https://") or (local and text.startswith("http://"))


@pytest.mark.fuzz
@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(max_size=120), st.text(max_size=120))
def test_any_text_as_keys_is_refused_with_a_reason(p256dh: str, auth: str) -> None:
    refusal = "keys.p256dh (accepted)"
    try:
        push.check_keys(p256dh, auth)
    except push.Refused as exc:
        refusal = str(exc)
    assert refusal.startswith(("keys.p256dh", "keys.auth"))


def test_each_outbox_row_has_its_own_short_topic() -> None:
    """RFC 8030 Topic: at most 32 base64url characters, the same for a resend of one row."""
    a, b = push.topic("incident:7:event:40:push:1"), push.topic("incident:7:event:40:push:2")
    assert len(a) == 32
    assert push.b64url(a, "topic")
    assert a != b
    assert push.topic("incident:7:event:40:push:1") == a


@pytest.mark.parametrize(("reason", "event", "subject", "title"), [
    ("dispatched", "reassigned", "[Hourglass] dispatched: incident 7: disk:Z1 on web-01",
     "Job transferred to you: incident 7: disk:Z1 on web-01"),
    ("breach", "escalated", "[Hourglass] breach: incident 7: disk:Z1 on web-01",
     "Escalated to you: incident 7: disk:Z1 on web-01"),
    ("low_spares", None, "[Hourglass] low spares at iad1: ST8000",
     "Low spares at iad1: ST8000"),
    ("claim_plan", None, "", "Claim plan"),
])
def test_the_title_says_what_happened_first(reason: str, event: str | None, subject: str,
                                            title: str) -> None:
    doc = push.payload(push.Notice(reason, subject, "b", "k", event, 7, 42), T0)
    assert doc["title"] == title
