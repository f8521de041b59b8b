"""`hourglass pki` and `hourglass broker acl` on a real Mosquitto running the shipped
deploy/mosquitto/mosquitto.conf: a host's certificate publishes under its own site and id
only, a revoked certificate cannot connect."""

from __future__ import annotations

import shutil
import signal
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from hourglass.cli import main
from tests.agent.test_mqtt_auth import NOT_AUTHORIZED, Client
from tests.deploy.shipped import ROOT, ShippedBroker, shipped_broker

FLEET = ROOT / "docs" / "fleet.example.yaml"  # web-01, web-02 and db-01 are at iad1


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A CA with the broker's certificate, the collectors' and three hosts' (the CLI)."""
    d = tmp_path / "pki"
    assert main(["pki", "init", "--dir", str(d)]) == 0
    assert main(["pki", "issue", "--dir", str(d), "--server", "broker", "--san", "127.0.0.1",
                 "--san", "localhost"]) == 0
    for host in ("collector", "web-01", "web-02", "stranger"):
        assert main(["pki", "issue", "--dir", str(d), "--host", host]) == 0
    return d


def install(pki: Path, conf_dir: Path) -> None:
    """Copy what the broker reads from the PKI, as an operator (or ansible) does."""
    (conf_dir / "certs").mkdir(parents=True, exist_ok=True)
    for src, name in ((pki / "ca.pem", "ca.pem"), (pki / "crl.pem", "crl.pem"),
                      (pki / "certs/broker.pem", "broker.pem"),
                      (pki / "certs/broker.key", "broker.key")):
        shutil.copy(src, conf_dir / "certs" / name)


@pytest.fixture
def broker(tmp_path: Path, pki: Path) -> Iterator[ShippedBroker]:
    conf_dir = tmp_path / "broker"
    conf_dir.mkdir()
    install(pki, conf_dir)
    assert main(["broker", "acl", "--fleet", str(FLEET), "--out", str(conf_dir / "acl")]) == 0
    b = shipped_broker(conf_dir)
    b.start()
    yield b
    b.stop()


def host_client(broker: ShippedBroker, pki: Path, host: str) -> Client:
    """A client with ``host``'s certificate."""
    pair = SimpleNamespace(cert=pki / "certs" / f"{host}.pem", key=pki / "certs" / f"{host}.key")
    # Client reads only .cert of its CA and .cert/.key of its pair
    return Client(broker.tls_port, f"{host}-probe", ca=SimpleNamespace(cert=pki / "ca.pem"),
                  pair=pair)


def collector(broker: ShippedBroker, pki: Path) -> Client:
    """The collectors' identity (CN collector), subscribed to everything."""
    w = host_client(broker, pki, "collector")
    w.c.subscribe("hg/#", qos=1)
    time.sleep(0.5)
    return w


def test_a_host_certificate_publishes_under_its_own_site_and_id_only(
        broker: ShippedBroker, pki: Path) -> None:
    watcher = collector(broker, pki)
    web01 = host_client(broker, pki, "web-01")
    stranger = host_client(broker, pki, "stranger")  # signed by the CA, not in the fleet
    try:
        assert web01.accepted.wait(5)
        assert stranger.accepted.wait(5)
        assert web01.publish("hg/v1/iad1/web-01/telemetry").value == 0
        assert web01.publish("hg/v1/iad1/web-02/telemetry").value == NOT_AUTHORIZED
        assert web01.publish("hg/v1/lon1/web-01/telemetry").value == NOT_AUTHORIZED
        assert stranger.publish("hg/v1/iad1/stranger/telemetry").value == NOT_AUTHORIZED
        time.sleep(0.5)  # anything let through would have arrived by now
        assert watcher.topics() == {"hg/v1/iad1/web-01/telemetry"}
    finally:
        for c in (web01, stranger, watcher):
            c.close()


def connects(broker: ShippedBroker, pki: Path, host: str) -> bool:
    """Whether ``host``'s certificate gets a successful CONNACK within three seconds."""
    try:
        c = host_client(broker, pki, host)
    except (ssl.SSLError, OSError):
        return False
    try:
        return c.accepted.wait(3)
    finally:
        c.close()


def test_a_revoked_certificate_cannot_connect(tmp_path: Path, broker: ShippedBroker,
                                              pki: Path) -> None:
    """SIGHUP makes Mosquitto read the CRL again: a new connection with the revoked
    certificate is refused; clients already connected keep their session (so does the
    revoked one: restart the broker to drop it)."""
    assert connects(broker, pki, "web-02")
    watcher = collector(broker, pki)
    web01, web02 = host_client(broker, pki, "web-01"), host_client(broker, pki, "web-02")
    try:
        assert web01.accepted.wait(5)
        assert web02.accepted.wait(5)
        assert main(["pki", "revoke", "--dir", str(pki), "web-02"]) == 0
        install(pki, tmp_path / "broker")
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGHUP)  # Mosquitto reads its crlfile again
        time.sleep(1)  # the reload happens in the broker's next loop
        assert not connects(broker, pki, "web-02")
        assert connects(broker, pki, "web-01")
        assert broker.proc.poll() is None
        assert web01.publish("hg/v1/iad1/web-01/event").value == 0
        assert web02.publish("hg/v1/iad1/web-02/event").value == 0  # still connected
        time.sleep(0.5)
        assert watcher.topics() == {"hg/v1/iad1/web-01/event", "hg/v1/iad1/web-02/event"}
    finally:
        for c in (web01, web02, watcher):
            c.close()
    broker.stop()
    broker.start()
    assert not connects(broker, pki, "web-02")
