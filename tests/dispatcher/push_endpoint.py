"""A local push service for the tests: a real HTTP server on 127.0.0.1 playing the part of
FCM or Mozilla's autopush for the devices it makes.

Each device has its own P-256 key pair and 16-byte auth secret, as a browser's
PushSubscription does. Every POST is checked as a push service would (RFC 8030, 8291,
8292): `Content-Encoding: aes128gcm`, a TTL, and a VAPID `Authorization: vapid t=<JWT>,
k=<key>` whose key is the server's, whose ES256 signature verifies and whose claims carry
aud (this origin), exp (in the future, at most 24 h ahead) and sub, and a Topic of at most
32 base64url characters; the body is decrypted
with the device's private key (`http-ece`). A push that fails a check is kept in
`problems` and answered 400; otherwise it is kept in `received` and answered 201, or with
the statuses a test queued for that device (404, 410, 500...).
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.conftest import free_port


def b64d(s: str) -> bytes:
    """base64url without padding."""
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


@dataclass
class Device:
    """A browser's subscription: what the page posts, and the keys only the browser has."""

    name: str
    endpoint: str
    key: ec.EllipticCurvePrivateKey
    auth: bytes

    @property
    def subscription(self) -> dict[str, Any]:
        """PushSubscription.toJSON(), as the service worker's page posts it."""
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64e(point), "auth": b64e(self.auth)}}


@dataclass(frozen=True)
class Received:
    """One push that passed every check, decrypted."""

    device: str
    payload: dict[str, Any]
    claims: dict[str, Any]
    headers: dict[str, str]
    at: float  # time.time() when it arrived


class PushEndpoint:
    """The local push service; use as a context manager."""

    def __init__(self, vapid_public: str = "", subject: str = "") -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.vapid_public = vapid_public  # the server's key, once the test knows it
        self.subject = subject
        self.devices: dict[str, Device] = {}
        self.answers: dict[str, deque[int]] = defaultdict(deque)
        self.received: list[Received] = []
        self.problems: list[str] = []
        self.attempts: list[tuple[str, int]] = []  # (device, status answered), every POST
        self.hooks: list[tuple[dict[str, Any], float]] = []  # plain webhooks: the baseline
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PushEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def device(self, name: str) -> Device:
        """A new device (a browser profile) subscribed at this service."""
        d = Device(name, f"{self.origin}/push/{name}", ec.generate_private_key(ec.SECP256R1()),
                   os.urandom(16))
        self.devices[name] = d
        return d

    def answer(self, name: str, *statuses: int) -> None:
        """Answer the device's next pushes with these statuses (then 201 again)."""
        self.answers[name].extend(statuses)

    def of(self, name: str) -> list[Received]:
        """What the device received."""
        with self.lock:
            return [r for r in self.received if r.device == name]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                status = endpoint._take(self)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass  # quiet: the test reports what matters

        return Handler

    def _take(self, req: BaseHTTPRequestHandler) -> int:
        at = time.time()
        name = req.path.rsplit("/", 1)[-1]
        body = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        if req.path.startswith("/hook/"):  # the outbox's plain webhook, for comparison
            with self.lock:
                self.hooks.append((json.loads(body), at))
            return 200
        headers = {k.lower(): v for k, v in req.headers.items()}
        device = self.devices.get(name)
        try:
            if device is None:
                raise ValueError(f"unknown device {name}")
            claims = self._check(headers)
            payload = json.loads(http_ece.decrypt(body, private_key=device.key,
                                                  auth_secret=device.auth,
                                                  version="aes128gcm").decode())
        except (ValueError, KeyError, InvalidSignature) as exc:
            with self.lock:
                self.problems.append(f"{name}: {type(exc).__name__}: {exc}")
                self.attempts.append((name, 400))
            return 400
        with self.lock:
            status = self.answers[name].popleft() if self.answers[name] else 201
            self.attempts.append((name, status))
            if status == 201:
                self.received.append(Received(name, payload, claims, headers, at))
        return status

    def _check(self, h: dict[str, str]) -> dict[str, Any]:
        """The checks a push service makes; the JWT's claims, or ValueError."""
        if h.get("content-encoding") != "aes128gcm":
            raise ValueError(f"Content-Encoding {h.get('content-encoding')!r}")
        if not h.get("ttl", "").isdigit():
            raise ValueError("no TTL header")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", h.get("topic", "")):
            raise ValueError(f"Topic {h.get('topic')!r}: RFC 8030 wants 1-32 base64url chars")
        scheme, _, params = h.get("authorization", "").partition(" ")
        if scheme != "vapid":
            raise ValueError(f"Authorization scheme {scheme!r}, not vapid")
        parts = dict(p.strip().split("=", 1) for p in params.split(","))
        if parts["k"] != self.vapid_public:
            raise ValueError("k is not the server's VAPID public key")
        head, claims_b64, sig = parts["t"].split(".")
        if json.loads(b64d(head)) != {"typ": "JWT", "alg": "ES256"}:
            raise ValueError(f"JWT header {b64d(head)!r}")
        raw = b64d(sig)
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(parts["k"]))
        key.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                        int.from_bytes(raw[32:], "big")),
                   f"{head}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        claims: dict[str, Any] = json.loads(b64d(claims_b64))
        if claims.get("aud") != self.origin:
            raise ValueError(f"aud {claims.get('aud')!r}, not {self.origin}")
        if not time.time() < int(claims.get("exp", 0)) <= time.time() + 24 * 3600:
            raise ValueError(f"exp {claims.get('exp')} not within the next 24 h")
        if claims.get("sub") != self.subject:
            raise ValueError(f"sub {claims.get('sub')!r}, not {self.subject!r}")
        return claims
