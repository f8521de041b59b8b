"""The shipped broker configuration (deploy/mosquitto/mosquitto.conf) run on a real Mosquitto.

Only what must differ on a test machine is rewritten: the container's paths become the
test's folder, the listener's port becomes a free port on 127.0.0.1, and a broker
started as root keeps running as root (it would drop to the mosquitto user, which cannot
read the test's files). Every other line is the shipped one.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.agent.brokers import mosquitto_binary
from tests.conftest import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONF = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
#: The port the shipped file listens on: TLS with client certificates, for everyone.
TLS = 8883


def rewrite(conf: str, config_dir: Path, data_dir: Path, ports: dict[int, int]) -> str:
    """The shipped text with its paths under ``config_dir``/``data_dir`` and ports moved."""
    text = conf.replace("/mosquitto/config/", f"{config_dir}/").replace(
        "/mosquitto/data/", f"{data_dir}/")
    for shipped, port in ports.items():
        text, n = re.subn(rf"^listener {shipped}$", f"listener {port} 127.0.0.1", text,
                          flags=re.MULTILINE)
        assert n == 1, f"the shipped configuration has no 'listener {shipped}' line"
    user = "user root\n" if os.geteuid() == 0 else ""
    return f"{user}log_dest file {data_dir}/mosquitto.log\n{text}"


@dataclass
class ShippedBroker:
    """Mosquitto running a rewritten copy of a configuration file."""

    conf: Path
    tls_port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait for its listener; a refused configuration shows the log."""
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_port(self.tls_port)
        except Exception as exc:
            self.stop()
            log = self.log.read_text() if self.log.exists() else ""
            raise AssertionError(f"mosquitto did not start on {self.conf}: {log}") from exc

    def stop(self) -> None:
        """Stop it by its pid."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


def shipped_broker(config_dir: Path, conf_text: str | None = None) -> ShippedBroker:
    """A broker on the shipped configuration (or ``conf_text`` of the same shape) whose
    acl and certs/ are expected in ``config_dir``."""
    data = config_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    tls = free_port()
    conf = config_dir / "mosquitto.conf"
    conf.write_text(rewrite(conf_text or SHIPPED_CONF.read_text(), config_dir, data,
                            {TLS: tls}))
    return ShippedBroker(conf, tls, data / "mosquitto.log")
