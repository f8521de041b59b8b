"""Delivery worker: queues new timeline events, sends due outbox rows, records every attempt.

Owns the `deliveries` table and the outbox's state after enqueue. A claim is one short
transaction (`FOR UPDATE SKIP LOCKED`) that leases the rows by moving their due time; the
sending happens after commit, outside every clock transaction, so a dead SMTP server or a
slow webhook holds no lock a timer needs. A worker that dies mid-send leaves its lease to
expire and another worker sends again: at least once. Each failure is retried with doubling,
jittered backoff up to `notify.max_attempts` (billing: until a 2xx, never given up).
Push rows (one per subscribed device) go through `pywebpush` (RFC 8291 aes128gcm, VAPID):
a push service's 404 or 410 means the browser dropped the subscription, which is removed
and the row finished; any other failure is retried like email.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import smtplib
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

import psycopg
import requests
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from dispatcher import store
from dispatcher.domain import push as rules
from dispatcher.domain.notify import backoff_s
from dispatcher.store import Conn, outbox, push
from hourglass.config import NotifyConfig, PushConfig

log = logging.getLogger(__name__)
LEASE_TIMEOUTS = 6  # a claimed row is leased for six attempt timeouts: SMTP connect + send
CLAIM = 10  # rows per claim: a slow row delays at most nine others of one worker


@dataclass(frozen=True)
class Claimed:
    """An outbox row leased for one attempt."""

    id: int
    ref: str
    recipient: str
    channel: str
    address: str
    reason: str
    subject: str
    body: str
    attempt: int
    created_at: datetime
    subscription: int | None = None  # a push row's device (None: removed since)


@dataclass(frozen=True)
class Result:
    """What one attempt did."""

    ok: bool
    status: int | None
    error: str | None
    duration_ms: float
    final: bool = False  # no retry can help (the push subscription is gone)


ALL_CHANNELS = ("email", "webhook", "billing", "push")
GONE = (404, 410)  # RFC 8030: the subscription expired or was unsubscribed


def claim(conn: Conn, now: datetime, lease: timedelta, limit: int = CLAIM,
          channels: tuple[str, ...] = ALL_CHANNELS) -> list[Claimed]:
    """Lease up to `limit` due rows: count the attempt and push their due time past the lease."""
    with conn.transaction():
        rows = conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, due_at = %s WHERE id IN ("
            " SELECT id FROM outbox WHERE state = 'pending' AND due_at <= %s"
            " AND channel = ANY(%s) ORDER BY due_at, id LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING id, ref, recipient, channel, address, reason, subject, body, attempts,"
            " created_at, push_subscription", (now + lease, now, list(channels), limit)).fetchall()
    return sorted((Claimed(*r) for r in rows), key=lambda c: c.id)


def sign(secret: str, body: bytes) -> str:
    """The X-Hourglass-Signature value: HMAC-SHA256 of the raw body, hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send(c: Claimed, cfg: NotifyConfig) -> Result:
    """One attempt over the row's channel; never raises."""
    start = time.monotonic()
    try:
        status = _email(c, cfg) if c.channel == "email" else _post(c, cfg)
        return Result(True, status, None, (time.monotonic() - start) * 1000)
    except urllib.error.HTTPError as exc:
        return Result(False, exc.code, f"HTTP {exc.code} {exc.reason}",
                      (time.monotonic() - start) * 1000)
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        return Result(False, None, f"{type(exc).__name__}: {exc}"[:500],
                      (time.monotonic() - start) * 1000)


def send_push(c: Claimed, to: push.Target | None, key: push.Vapid, cfg: NotifyConfig,
              push_cfg: PushConfig) -> Result:
    """One Web Push attempt to one device; never raises."""
    start = time.monotonic()
    if to is None:
        return Result(False, None, "the push subscription was removed", 0.0, final=True)
    try:
        resp = webpush({"endpoint": to.endpoint, "keys": {"p256dh": to.p256dh, "auth": to.auth}},
                       c.body, vapid_private_key=Vapid.from_pem(key.private_pem.encode()),
                       vapid_claims={"sub": push_cfg.vapid_subject(cfg)},
                       content_encoding="aes128gcm", timeout=cfg.timeout_s, ttl=push_cfg.ttl_s,
                       # RFC 8030: wake the phone now; a resend replaces, not doubles
                       headers={"Urgency": "high", "Topic": rules.topic(c.ref)})
        status = int(getattr(resp, "status_code", 201))
        return Result(True, status, None, (time.monotonic() - start) * 1000)
    except WebPushException as exc:
        code = getattr(exc.response, "status_code", None)
        error = f"HTTP {code} from the push service" if code else str(exc.message)[:500]
        return Result(False, code, error, (time.monotonic() - start) * 1000,
                      final=code in GONE)
    except (requests.RequestException, OSError, ValueError) as exc:
        return Result(False, None, f"{type(exc).__name__}: {exc}"[:500],
                      (time.monotonic() - start) * 1000)


def _email(c: Claimed, cfg: NotifyConfig) -> int | None:
    if not cfg.smtp_host:
        raise ValueError("notify.smtp_host is not set")
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = cfg.smtp_from, c.address, c.subject
    msg["Message-ID"] = make_msgid(domain="hourglass")
    msg["X-Hourglass-Ref"] = c.ref
    msg.set_content(c.body)
    with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.timeout_s) as smtp:
        if cfg.smtp_starttls:
            smtp.starttls()
        if cfg.smtp_username:
            smtp.login(cfg.smtp_username, cfg.smtp_password)
        smtp.send_message(msg)
    return None


def _post(c: Claimed, cfg: NotifyConfig) -> int:
    if not c.address.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {c.address!r}")
    if c.channel == outbox.BILLING:
        body = c.body.encode()
        headers = {"X-Hourglass-Signature": sign(cfg.billing_webhook_secret, body),
                   "Idempotency-Key": c.ref}
    else:
        body = json.dumps({"recipient": c.recipient, "reason": c.reason, "subject": c.subject,
                           "body": c.body, "ref": c.ref,
                           "at": c.created_at.astimezone(UTC).isoformat()}).encode()
        headers = {"Idempotency-Key": f"{c.ref}:{c.recipient}"}
    req = urllib.request.Request(c.address, data=body, method="POST",  # noqa: S310 - http(s) only, checked above
                                 headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(req, timeout=cfg.timeout_s) as resp:  # noqa: S310 - as above
        status = int(resp.status)
    if not 200 <= status < 300:
        raise urllib.error.HTTPError(c.address, status, "not a 2xx", resp.headers, None)
    return status


def record(conn: Conn, c: Claimed, r: Result, started: datetime, now: datetime,
           cfg: NotifyConfig, worker: str, jitter: float) -> str:
    """Write the attempt and the row's next state; returns the outcome."""
    gives_up = r.final or (c.channel != outbox.BILLING and c.attempt >= cfg.max_attempts)
    outcome = "sent" if r.ok else "failed" if gives_up else "retry"
    with conn.transaction():
        if c.channel == "push" and c.subscription is not None:
            push.outcome(conn, c.subscription, now, r.ok, r.error,
                         gone=r.status in GONE)
        conn.execute(
            "INSERT INTO deliveries (outbox_id, attempt, started_at, outcome, status_code, error,"
            " duration_ms, worker) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (c.id, c.attempt, started, outcome, r.status, r.error, r.duration_ms, worker))
        if outcome == "retry":
            wait = backoff_s(c.attempt, cfg.backoff_base_s, cfg.backoff_cap_s, jitter)
            conn.execute("UPDATE outbox SET due_at = %s, last_error = %s WHERE id = %s"
                         " AND state = 'pending'", (now + timedelta(seconds=wait), r.error, c.id))
        else:
            conn.execute("UPDATE outbox SET state = %s, done_at = %s, last_error = %s"
                         " WHERE id = %s AND state = 'pending'",
                         (outcome, now, r.error, c.id))
    if outcome != "sent":
        log.warning("notification %s to %s over %s, attempt %s: %s (%s)", c.id, c.recipient,
                    c.channel, c.attempt, outcome, r.error)
    return outcome


def deliver_due(conn: Conn, cfg: NotifyConfig, clock: Callable[[], datetime], worker: str,
                jitter: Callable[[], float] = random.random,  # noqa: S311 - spreading
                channels: tuple[str, ...] = ALL_CHANNELS,
                push_cfg: PushConfig | None = None) -> int:
    """Claim, send and record one batch of due rows; how many were attempted."""
    lease = timedelta(seconds=cfg.timeout_s * LEASE_TIMEOUTS)
    batch = claim(conn, clock(), lease, channels=channels)
    key = push.ensure_key(conn, clock()) if any(c.channel == "push" for c in batch) else None
    for c in batch:
        started = clock()
        if c.channel == "push" and key is not None:
            r = send_push(c, push.target(conn, c.subscription), key, cfg,
                          push_cfg or PushConfig())
        else:
            r = send(c, cfg)
        record(conn, c, r, started, clock(), cfg, worker, jitter())
    return len(batch)


def next_due(conn: Conn, channels: tuple[str, ...] = ALL_CHANNELS) -> datetime | None:
    """The soonest pending row's due time."""
    row = conn.execute("SELECT min(due_at) FROM outbox WHERE state = 'pending'"
                       " AND channel = ANY(%s)", (list(channels),)).fetchone()
    return row[0] if row else None


class Deliverer:
    """A worker loop in its own thread: the notifier pass (events to outbox rows) and/or the
    delivery of some channels; woken by NOTIFY, by the soonest due row, by poll_s."""

    def __init__(self, url: str, cfg: NotifyConfig,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 channels: tuple[str, ...] = ALL_CHANNELS, queue_events: bool = True,
                 push_cfg: PushConfig | None = None) -> None:
        self.url = url
        self.cfg = cfg
        self.push_cfg = push_cfg or PushConfig()
        self.clock = clock
        self.channels = channels
        self.queue_events = queue_events
        self.name = f"{socket.gethostname()}:{os.getpid()}:{'+'.join(channels) or 'queue'}"
        self.stop = threading.Event()

    def run(self) -> None:
        """Loop until stopped; a database outage is waited out, never fatal."""
        while not self.stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn, \
                        psycopg.connect(self.url, autocommit=True) as listen:
                    listen.execute(f"LISTEN {outbox.CHANNEL}")
                    listen.execute(f"LISTEN {store.CHANNEL}")  # timeline changes
                    while not self.stop.is_set():
                        while self.queue_events and outbox.notify_pass(
                                conn, self.clock(), self.cfg.billing_webhook_url) == outbox.BATCH:
                            pass
                        while self.channels and deliver_due(
                                conn, self.cfg, self.clock, self.name,
                                channels=self.channels, push_cfg=self.push_cfg) == CLAIM:
                            pass
                        for _ in listen.notifies(timeout=self._sleep_s(conn), stop_after=1):
                            pass
            except psycopg.OperationalError as exc:
                log.warning("database unavailable (%s); retrying", exc)
                self.stop.wait(1.0)

    def _sleep_s(self, conn: Conn) -> float:
        due = next_due(conn, self.channels) if self.channels else None
        if due is None:
            return self.cfg.poll_s
        return max(0.0, min(self.cfg.poll_s, (due - self.clock()).total_seconds()))

    def start(self) -> threading.Thread:
        """Run in a daemon thread."""
        thread = threading.Thread(target=self.run, name=f"deliver-{self.name}", daemon=True)
        thread.start()
        return thread


def start_workers(url: str, cfg: NotifyConfig,
                  push_cfg: PushConfig | None = None) -> list[Deliverer]:
    """The dispatcher process's four: one queues events, one sends email, one POSTs, one
    pushes (so a wedged SMTP server or push service delays neither the others nor the
    queueing, and none the clock)."""
    workers = [Deliverer(url, cfg, channels=()),
               Deliverer(url, cfg, channels=("email",), queue_events=False),
               Deliverer(url, cfg, channels=("webhook", "billing"), queue_events=False),
               Deliverer(url, cfg, channels=("push",), queue_events=False, push_cfg=push_cfg)]
    for w in workers:
        w.start()
    return workers
