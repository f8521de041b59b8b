"""Bad server configuration is refused at start, naming the file (or variable) and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.settings import ConfigError
from hourglass.config import load_config


@pytest.mark.parametrize(
    ("yaml_text", "env", "words"),
    [
        ("mqtt_url: http://broker\n", {}, ["cfg.yaml", "mqtt_url"]),
        ("collector:\n  batch_ms: soon\n", {}, ["cfg.yaml", "collector.batch_ms", "integer"]),
        ("colector: {}\n", {}, ["cfg.yaml", "colector", "unknown key"]),
        ("collector:\n  retention_days: 1\n", {}, ["cfg.yaml", "collector.retention_days"]),
        ("collector: {retention_days: 30, rollup_retention_days: 7}\n", {},
         ["cfg.yaml", "collector.rollup_retention_days"]),
        ("", {"HOURGLASS_HTTP_ADDR": "8080"}, ["http_addr", "HOURGLASS_HTTP_ADDR"]),
        ("", {"HOURGLASS_DATABASE_URL": "mysql://x"}, ["database_url", "HOURGLASS_DATABASE_URL"]),
        ("- a list\n", {}, ["cfg.yaml", "mapping"]),
        ("mqtt_url: mqtts://b\nmqtt_cert_file: c.pem\n", {},
         ["cfg.yaml", "mqtt_key_file", "needs its key"]),
        ("mqtt_ca_file: ca.pem\n", {}, ["cfg.yaml", "mqtt_ca_file", "mqtts://"]),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, yaml_text: str, env: dict[str, str],
                                       words: list[str]) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_config(cfg, env)
    for word in words:
        assert word in str(err.value)


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("http_addr: 127.0.0.1:9000\ncollector: {batch_messages: 100}\n")
    got = load_config(cfg, {"HOURGLASS_COLLECTOR_BATCH_MESSAGES": "250"})
    assert got.http_port == 9000
    assert got.collector.batch_messages == 250
