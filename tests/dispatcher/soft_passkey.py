"""A software authenticator, just enough for a test to answer a registration ceremony without
a browser: an ES256 key, "none" attestation (what Chromium's virtual authenticator and most
platform passkeys send), user present and verified. The browser tests use the real thing
(tests/web/test_passkeys.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from typing import Any
from urllib.parse import urlparse

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec

FLAGS = 0x01 | 0x04 | 0x40  # user present, user verified, attested credential data follows


def b64url(data: bytes) -> str:
    """Base64url without padding, as WebAuthn's JSON carries bytes."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def registration(challenge: bytes, origin: str) -> dict[str, Any]:
    """A new credential's answer to navigator.credentials.create() for `origin`, as JSON."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    cose = {1: 2, 3: -7, -1: 1, -2: key.x.to_bytes(32, "big"), -3: key.y.to_bytes(32, "big")}
    credential_id = secrets.token_bytes(16)
    rp_id = urlparse(origin).hostname or ""
    auth_data = (hashlib.sha256(rp_id.encode()).digest() + bytes([FLAGS]) + struct.pack(">I", 0)
                 + bytes(16) + struct.pack(">H", len(credential_id)) + credential_id
                 + cbor2.dumps(cose))
    client_data = json.dumps({"type": "webauthn.create", "challenge": b64url(challenge),
                              "origin": origin, "crossOrigin": False}).encode()
    attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
    return {"id": b64url(credential_id), "rawId": b64url(credential_id), "type": "public-key",
            "response": {"clientDataJSON": b64url(client_data),
                         "attestationObject": b64url(attestation), "transports": ["internal"]}}
