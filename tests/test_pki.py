"""hourglass.pki on its own: what the CA writes, with which permissions, and what it refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hourglass.cli import main
from hourglass.pki import Authority, PKIError

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_init_makes_a_private_ca_once(tmp_path: Path) -> None:
    ca = Authority(tmp_path / "pki")
    assert ca.init(NOW)
    before = ca.ca_key.read_bytes()
    assert not ca.init(NOW + timedelta(days=1))  # a second init leaves the CA alone
    assert ca.ca_key.read_bytes() == before
    assert ca.ca_key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "pki").stat().st_mode & 0o777 == 0o700
    root = cert(ca.ca_cert)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    crl = x509.load_pem_x509_crl(ca.crl.read_bytes())
    assert len(list(crl)) == 0
    assert crl.is_signature_valid(root.public_key())  # type: ignore[arg-type]


def test_a_host_certificate_names_the_host_and_is_for_clients(tmp_path: Path) -> None:
    ca = Authority(tmp_path)
    ca.init(NOW)
    pem, key = ca.issue("web-01", NOW)
    c = cert(pem)
    assert c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "web-01"
    eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert key.stat().st_mode & 0o777 == 0o600
    assert c.not_valid_after_utc == NOW + timedelta(days=397)
    c.verify_directly_issued_by(cert(ca.ca_cert))


def test_a_server_certificate_names_its_addresses(tmp_path: Path) -> None:
    ca = Authority(tmp_path)
    ca.init(NOW)
    c = cert(ca.issue("broker", NOW, server=True, sans=["mqtt.example.net", "10.0.0.10"])[0])
    san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mqtt.example.net"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.10"]


def test_revoke_lists_the_serials_in_the_crl(tmp_path: Path) -> None:
    ca = Authority(tmp_path)
    ca.init(NOW)
    old = cert(ca.issue("web-01", NOW)[0]).serial_number
    new = cert(ca.issue("web-01", NOW + timedelta(days=1))[0]).serial_number  # a rotation
    ca.revoke("web-01", NOW + timedelta(days=2), serial=old)
    crl = x509.load_pem_x509_crl(ca.crl.read_bytes())
    assert [r.serial_number for r in crl] == [old]
    ca.revoke("web-01", NOW + timedelta(days=3))  # the rest of the name's certificates
    assert {r.serial_number for r in x509.load_pem_x509_crl(ca.crl.read_bytes())} == {old, new}
    with pytest.raises(PKIError, match="no unrevoked certificate of 'web-01'"):
        ca.revoke("web-01", NOW)


def test_the_commands_say_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path / "pki")
    assert main(["pki", "issue", "--dir", d, "--host", "web-01"]) == 2
    assert "run `hourglass pki init` first" in capsys.readouterr().err
    assert main(["pki", "init", "--dir", d]) == 0
    assert main(["pki", "revoke", "--dir", d, "web-09"]) == 2
    assert "hourglass pki list" in capsys.readouterr().err
    assert main(["pki", "issue", "--dir", d, "--host", "../etc"]) == 2


def test_the_crl_is_rewritten_only_when_it_nears_its_end(tmp_path: Path) -> None:
    ca = Authority(tmp_path)
    ca.init(NOW)
    assert ca.crl_valid_until() == NOW + timedelta(days=365)
    assert not ca.refresh_crl(NOW + timedelta(days=300), min_days=30)
    assert ca.refresh_crl(NOW + timedelta(days=340), min_days=30)
    assert ca.crl_valid_until() == NOW + timedelta(days=340 + 365)


def test_hosts_signed_at_once_are_all_in_the_index(tmp_path: Path) -> None:
    """ansible signs many hosts' certificates in parallel: none may be lost from index.json
    (revoke by name reads it)."""
    from concurrent.futures import ThreadPoolExecutor

    ca = Authority(tmp_path)
    ca.init(NOW)
    names = [f"web-{i:02d}" for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: ca.issue(n, NOW), names))
    assert sorted(r.name for r in ca.index()) == names
