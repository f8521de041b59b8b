"""The fleet's private certificate authority: a CA, broker and host certificates, a CRL.

Owns the PKI directory (`hourglass pki …`). Agents authenticate to the broker with a client
certificate whose CN is the host id (Mosquitto `use_identity_as_username`); the broker
names itself with a server certificate and refuses what the CRL lists (`crlfile`).
Everything is made with the `cryptography` package, never an openssl shell-out.

Layout of the directory::

    ca.pem  ca.key (0600)       the authority
    crl.pem                     revoked serials, signed by the CA; the broker's crlfile
    certs/NAME.pem NAME.key     the newest certificate of each host or server (key 0600)
    index.json                  every certificate issued: serial, name, kind, expiry, revoked
    .lock                       held while one command changes the directory (ansible signs
                                the certificates of several hosts at once)
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650  # the authority outlives every certificate it signs: ten years
CERT_DAYS = 397  # the CA/Browser Forum's ceiling for a leaf; rotate yearly
# The broker reads the CRL at start; a CRL past its next update is refused by OpenSSL, so
# it is valid long and rewritten on every revocation (and by `pki crl`).
CRL_DAYS = 365
_BACKDATE = timedelta(minutes=5)  # tolerate a few minutes of clock skew between machines
#: A CN is a topic level and a file name: the fleet file's id pattern (schemas/mqtt
#: envelope.json `ident`), so no name can climb out of certs/ or hold MQTT wildcards.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class PKIError(Exception):
    """A PKI command cannot proceed; the message says what to do."""


@dataclass(frozen=True)
class Issued:
    """One certificate the CA signed, as index.json records it."""

    serial: int
    name: str
    kind: str  # "host" (client auth) or "server"
    not_after: str  # RFC 3339 UTC
    revoked_at: str | None = None


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write a file created with ``mode`` from the start (a key is never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)  # the umask may have narrowed what os.open set
    tmp.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Authority:
    """The CA in one directory; every method takes ``now`` (the clock is injected)."""

    def __init__(self, directory: Path) -> None:
        """Point at ``directory``; nothing is read until a method needs it."""
        self.dir = directory
        self.ca_cert, self.ca_key = directory / "ca.pem", directory / "ca.key"
        self.crl, self.index_file = directory / "crl.pem", directory / "index.json"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the directory's lock: index.json is read, changed and written whole."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def init(self, now: datetime, name: str = "Hourglass fleet CA") -> bool:
        """Create the CA and an empty CRL; False (and nothing touched) if one exists."""
        if self.ca_key.exists():
            return False
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        with self._locked():
            return self._init(now, name)

    def _init(self, now: datetime, name: str) -> bool:
        if self.ca_key.exists():  # made by another process while we waited for the lock
            return False
        key = ec.generate_private_key(ec.SECP256R1())  # P-256: small, fast, universal
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - _BACKDATE).not_valid_after(now + timedelta(CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                             False, False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        _write(self.ca_key, _key_pem(key), 0o600)
        _write(self.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        self._save_index([])
        self._write_crl(now)
        return True

    def _load_ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        if not self.ca_key.exists():
            raise PKIError(f"no CA in {self.dir}: run `hourglass pki init` first")
        key = serialization.load_pem_private_key(self.ca_key.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PKIError(f"{self.ca_key}: not an EC key made by `hourglass pki init`")
        return x509.load_pem_x509_certificate(self.ca_cert.read_bytes()), key

    def index(self) -> list[Issued]:
        """Every certificate issued, oldest first."""
        if not self.index_file.exists():
            return []
        return [Issued(**row) for row in json.loads(self.index_file.read_text())]

    def _save_index(self, rows: Sequence[Issued]) -> None:
        _write(self.index_file, (json.dumps([asdict(r) for r in rows], indent=1) + "\n")
               .encode(), 0o600)

    def issue(self, name: str, now: datetime, *, server: bool = False,
              sans: Sequence[str] = (), days: int = CERT_DAYS) -> tuple[Path, Path]:
        """Sign a new key for ``name`` (CN); a server certificate names ``sans`` too."""
        if not _NAME.fullmatch(name):
            raise PKIError(f"{name!r} is not a host id or server name (letters, digits, "
                           "'.', '_', '-'; 1-63 characters, starting with a letter or digit)")
        ca, ca_key = self._load_ca()
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .issuer_name(ca.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - _BACKDATE).not_valid_after(now + timedelta(days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                   .add_extension(x509.KeyUsage(True, False, True, False, False, False, False,
                                                False, False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       ca_key.public_key()), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [_san(s) for s in (sans or [name])]), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        cert_path, key_path = self.dir / "certs" / f"{name}.pem", self.dir / "certs" / f"{name}.key"
        with self._locked():
            _write(key_path, _key_pem(key), 0o600)
            _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
            self._save_index([*self.index(), Issued(cert.serial_number, name,
                                                    "server" if server else "host",
                                                    _rfc3339(now + timedelta(days)))])
        return cert_path, key_path

    def revoke(self, name: str, now: datetime, serial: int | None = None) -> list[Issued]:
        """Revoke every valid certificate of ``name`` (or the one ``serial``); rewrite the CRL."""
        with self._locked():
            return self._revoke(name, now, serial)

    def _revoke(self, name: str, now: datetime, serial: int | None) -> list[Issued]:
        rows = self.index()
        hit = [r for r in rows if r.name == name and r.revoked_at is None
               and (serial is None or r.serial == serial)]
        if not hit:
            raise PKIError(f"no unrevoked certificate of {name!r}"
                           + (f" with serial {serial:x}" if serial is not None else "")
                           + ": see `hourglass pki list`")
        at, hit_serials = _rfc3339(now), {r.serial for r in hit}
        self._save_index([Issued(r.serial, r.name, r.kind, r.not_after, at)
                          if r.serial in hit_serials else r for r in rows])
        self._write_crl(now)
        return hit

    def write_crl(self, now: datetime) -> Path:
        """Write crl.pem listing every revoked serial, valid for CRL_DAYS."""
        with self._locked():
            return self._write_crl(now)

    def _write_crl(self, now: datetime) -> Path:
        ca, ca_key = self._load_ca()
        builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
                   .last_update(now - _BACKDATE).next_update(now + timedelta(CRL_DAYS)))
        for r in self.index():
            if r.revoked_at is not None:
                when = datetime.strptime(r.revoked_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder().serial_number(r.serial)
                    .revocation_date(when).build())
        crl = builder.sign(ca_key, hashes.SHA256())
        _write(self.crl, crl.public_bytes(serialization.Encoding.PEM), 0o644)
        return self.crl


    def crl_valid_until(self) -> datetime:
        """When the current crl.pem expires (OpenSSL then refuses every client certificate)."""
        crl = x509.load_pem_x509_crl(self.crl.read_bytes())
        until = crl.next_update_utc
        if until is None:  # every CRL this module writes has one
            raise PKIError(f"{self.crl} has no next update: rewrite it with `hourglass pki crl`")
        return until

    def refresh_crl(self, now: datetime, min_days: float) -> bool:
        """Rewrite crl.pem if it expires within ``min_days``; True when it was rewritten."""
        with self._locked():
            if self.crl.exists() and self.crl_valid_until() - now > timedelta(days=min_days):
                return False
            self._write_crl(now)
            return True


def _san(value: str) -> x509.GeneralName:
    """An IP address or a DNS name, as the text reads."""
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)
