"""Agent configuration: defaults, environment overrides, errors naming file and key."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from agent.config import AgentConfig, load_config
from agent.settings import ConfigError

SAMPLE = Path(__file__).resolve().parents[2] / "agent" / "agent.sample.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


def test_sample_loads() -> None:
    cfg = load_config(SAMPLE, env={})
    assert cfg.site == "iad1"
    assert cfg.probes == ("system", "smart", "edac", "mdstat", "ipmi", "mce", "nic", "hwmon")


def test_defaults(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "site: iad1\n"), env={})
    assert cfg.host == socket.gethostname().split(".")[0]
    assert (cfg.interval_s, cfg.smart_interval_s, cfg.root) == (30.0, 900.0, "/")
    assert cfg.broker == ("127.0.0.1", 1883, False)
    assert cfg.spool_path == "/var/lib/hourglass-agent/spool.db"


def test_environment_overrides(tmp_path: Path) -> None:
    env = {"HOURGLASS_AGENT_MQTT_URL": "mqtts://broker.example", "HOURGLASS_AGENT_HOST": "web-9",
           "HOURGLASS_AGENT_TLS_CA_FILE": "/etc/ca.pem", "HOURGLASS_AGENT_PROBES": "system,smart",
           "HOURGLASS_AGENT_INTERVAL_S": "5"}
    cfg = load_config(_write(tmp_path, "site: iad1\nhost: web-1\n"), env=env)
    assert cfg.broker == ("broker.example", 8883, True)
    assert (cfg.host, cfg.interval_s, cfg.probes) == ("web-9", 5.0, ("system", "smart"))
    assert cfg.tls.ca_file == "/etc/ca.pem"


@pytest.mark.parametrize(("text", "key"), [
    ("host: web-1\n", "'site'"),
    ("site: iad1\ninterval_s: soon\n", "'interval_s'"),
    ("site: iad1\nmqtt_url: http://x\n", "'mqtt_url'"),
    ("site: 'a b'\n", "'site'"),
    ("site: iad1\nprobes: [system, ipmi-nope]\n", "'probes[1]'"),
    ("site: iad1\ntls: {cert_file: c.pem}\n", "'tls.cert_file'"),
    ("site: iad1\nspool: x\n", "'spool'"),
    ("site: iad1\ninterval_s: 0\n", "'interval_s'"),
])
def test_errors_name_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert str(path) in str(err.value)
    assert key in str(err.value)


def test_config_is_frozen(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "site: iad1\n"), env={})
    assert isinstance(cfg, AgentConfig)
    with pytest.raises(AttributeError):
        cfg.site = "x"  # type: ignore[misc]
