"""Web Push, the pure part: is a browser's subscription usable, and what a push carries.

A subscription (the browser's PushSubscription JSON) is checked before it is kept: an https
endpoint (http only to this machine when the configuration allows it, for tests and the
demo), no user name or password in it, at most 1,000 characters; `p256dh` the browser's
P-256 public key (base64url of a 65-byte uncompressed point that lies on the curve, since
RFC 8291's key agreement with a point off the curve is an invalid-curve attack waiting to
happen) and `auth` its 16-byte secret. The payload is the contract with the service worker
(docs/push.md): kind, title, body, tag, url, incident, job, sent_at, key and the actions
it offers (Acknowledge and Decline), at most 3,000 bytes of JSON before encryption.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

ENDPOINT_MAX = 1000  # real endpoints are 150-500 characters (FCM, Mozilla, Apple)
DEVICE_MAX = 100
PER_PERSON = 10  # subscriptions a person keeps: phone, tablet, a few browsers; the oldest goes
PAYLOAD_MAX = 3000  # bytes of JSON: under the 4,096-byte record less RFC 8291's overhead
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")

# P-256 (SEC 2, secp256r1): y^2 = x^3 - 3x + b over the prime field p.
_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B

#: The escalation timeline reasons that ask a manager or executive to take the incident.
ESCALATIONS = frozenset({"escalated", "breach"})


class Refused(ValueError):
    """A subscription that cannot be used; the message says why and what to send."""


def b64url(raw: str, what: str) -> bytes:
    """Decode base64url (padding optional); Refused when it is not."""
    if not _B64URL.match(raw):
        raise Refused(f"{what}: not base64url (only A-Z, a-z, 0-9, '-' and '_')")
    try:
        return base64.urlsafe_b64decode(raw.rstrip("=") + "=" * (-len(raw.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        raise Refused(f"{what}: not base64url") from None


def b64url_encode(data: bytes) -> str:
    """base64url without padding, as the Push API's JSON carries keys."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def on_curve(point: bytes) -> bool:
    """Whether 65 bytes are an uncompressed P-256 point (0x04 || x || y) on the curve."""
    if len(point) != 65 or point[0] != 4:
        return False
    x, y = int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big")
    if not (0 <= x < _P and 0 <= y < _P):
        return False
    return (y * y - (x * x * x - 3 * x + _B)) % _P == 0


def check_endpoint(endpoint: str, allow_http_localhost: bool) -> str:
    """The endpoint if a push service may be POSTed there; Refused with the reason."""
    if len(endpoint) > ENDPOINT_MAX:
        raise Refused(f"endpoint: {len(endpoint)} characters; at most {ENDPOINT_MAX}")
    try:
        u = urlsplit(endpoint)
        host = u.hostname
        u.port  # noqa: B018 - parsing the port raises on a bad one
    except ValueError:
        raise Refused("endpoint: not a URL; send the PushSubscription's endpoint") from None
    if u.username is not None or u.password is not None or "@" in u.netloc:
        raise Refused("endpoint: a user name or password in the URL is not allowed")
    if not host:
        raise Refused("endpoint: no host; send the PushSubscription's endpoint")
    if any(c.isspace() or ord(c) < 0x20 for c in endpoint):
        raise Refused("endpoint: spaces or control characters are not allowed")
    if u.scheme == "https":
        return endpoint
    if u.scheme == "http" and host in LOCAL_HOSTS:
        if allow_http_localhost:
            return endpoint
        raise Refused("endpoint: http is allowed only to 127.0.0.1 or localhost when "
                      "push.allow_http_localhost is true; push services use https")
    raise Refused("endpoint: must be an https URL (a push service's endpoint)")


def check_keys(p256dh: str, auth: str) -> None:
    """Refused unless p256dh is a P-256 point on the curve and auth is 16 bytes."""
    point = b64url(p256dh, "keys.p256dh")
    if len(point) != 65 or point[0] != 4:
        raise Refused(f"keys.p256dh: {len(point)} bytes; expected the 65-byte uncompressed "
                      "P-256 point (0x04, x, y) that getKey('p256dh') gives")
    if not on_curve(point):
        raise Refused("keys.p256dh: not a point on the P-256 curve")
    secret = b64url(auth, "keys.auth")
    if len(secret) != 16:
        raise Refused(f"keys.auth: {len(secret)} bytes; expected the 16-byte secret "
                      "that getKey('auth') gives")


def topic(ref: str) -> str:
    """RFC 8030 Topic for one outbox row: a resend after a crash mid-send replaces the first
    copy still waiting at the push service instead of ringing twice (32 base64url chars)."""
    return b64url_encode(hashlib.sha256(ref.encode()).digest()[:24])


def kind_of(reason: str, event_kind: str | None) -> str:
    """The payload's kind: job, reassigned, escalation, else the notification's reason."""
    if event_kind == "reassigned":
        return "reassigned"
    if reason == "dispatched":
        return "job"
    if reason in ESCALATIONS:
        return "escalation"
    return reason


@dataclass(frozen=True)
class Notice:
    """One notification to one staff person, as the outbox queued it."""

    reason: str
    subject: str
    body: str
    key: str  # the outbox ref: one id for this notification on all the person's devices
    event_kind: str | None = None  # the timeline entry it came from, if any
    incident: int | None = None
    job: int | None = None  # the person's live job on the incident (technicians)


DECLINED = "Declined from the notification"


def actions(kind: str, incident: int | None, job: int | None) -> list[dict[str, Any]]:
    """Acknowledge and Decline: the job's own actions, or the escalation's for a manager."""
    if kind in ("job", "reassigned") and job is not None:
        base = f"/api/v1/jobs/{job}"
    elif kind == "escalation" and incident is not None:
        base = f"/api/v1/incidents/{incident}/escalation"
    else:
        return []
    return [{"action": "acknowledge", "title": "Acknowledge", "method": "POST",
             "path": f"{base}/acknowledge", "body": None},
            {"action": "decline", "title": "Decline", "method": "POST",
             "path": f"{base}/decline", "body": {"reason": DECLINED}}]


#: What a lock screen says first, by kind; other kinds say their reason.
TITLES = {"job": "New job", "reassigned": "Job transferred to you",
          "escalation": "Escalated to you"}


def _title(kind: str, reason: str, subject: str) -> str:
    """"New job: incident 7: disk:Z1 on web-01" from the email's subject."""
    what = subject.removeprefix("[Hourglass] ").removeprefix(f"{reason}: ").strip()
    lead = TITLES.get(kind) or reason.replace("_", " ").capitalize()
    if what.lower().startswith(lead.lower()):  # "low spares at iad1: ..." says it already
        return (what[:1].upper() + what[1:])[:120]
    return f"{lead}: {what}"[:120] if what else lead


def payload(n: Notice, now: datetime) -> dict[str, Any]:
    """The JSON the service worker receives (docs/push.md), cut to PAYLOAD_MAX bytes."""
    kind = kind_of(n.reason, n.event_kind)
    if n.job is not None and kind in ("job", "reassigned"):
        tag, url = f"job-{n.job}", f"/tech#job-{n.job}"
    elif n.incident is not None:
        tag = f"incident-{n.incident}"
        url = f"/tech#incident-{n.incident}" if kind in ("job", "reassigned") else \
            f"/ops#incident-{n.incident}"
    else:
        tag, url = f"{kind}-{n.key}"[:80], "/tech" if kind == "job" else "/ops"
    doc: dict[str, Any] = {
        "kind": kind, "title": _title(kind, n.reason, n.subject), "body": n.body,
        "tag": tag, "url": url,
        "incident": n.incident, "job": n.job,
        "sent_at": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "key": n.key, "actions": actions(kind, n.incident, n.job)}
    raw = n.body.encode()
    while len(encode(doc)) > PAYLOAD_MAX and raw:  # only the body is long: cut it, UTF-8 kept
        raw = raw[:max(0, len(raw) - (len(encode(doc)) - PAYLOAD_MAX) - 3)]
        doc["body"] = raw.decode(errors="ignore") + "…"
    return doc


def encode(doc: Mapping[str, Any]) -> bytes:
    """The payload's bytes: compact UTF-8 JSON."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
