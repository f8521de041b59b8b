"""docker-compose.yml cannot run here (no Docker engine); check what can be checked."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from hourglass.cli import parser
from hourglass.config import Config

ROOT = Path(__file__).resolve().parent.parent


def config_env_names() -> set[str]:
    names = set()
    for f in dataclasses.fields(Config):
        if dataclasses.is_dataclass(f.default_factory if callable(f.default_factory) else None):
            sub = f.default_factory()  # type: ignore[misc]
            names |= {f"HOURGLASS_{f.name.upper()}_{g.name.upper()}"
                      for g in dataclasses.fields(sub)}
        else:
            names.add(f"HOURGLASS_{f.name.upper()}")
    return names


def test_compose_services_use_real_commands_and_known_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"db", "broker", "migrate", "collector", "dispatcher"} <= set(services)
    known = config_env_names()
    for name in ("migrate", "collector", "dispatcher"):
        svc = services[name]
        for key in svc.get("environment", {}):
            assert key in known, f"{name} sets {key}, which no configuration key reads"
        parser().parse_args(svc["command"])  # exits (fails the test) on an unknown command
        assert svc["build"] == "."
    assert "HOURGLASS_DATABASE_URL" in services["collector"]["environment"]
    assert services["dispatcher"]["environment"]["HOURGLASS_HTTP_ADDR"].endswith(":8080")
    assert "8080:8080" in services["dispatcher"]["ports"]


def test_the_shipped_acl_is_the_one_hourglass_broker_acl_writes() -> None:
    """deploy/mosquitto/acl is `hourglass broker acl --fleet docs/fleet.example.yaml`: each
    host pinned to its own site and id, no pattern that lets a host write under its id at
    another site (tests/deploy/test_broker_pki.py runs it on a real broker)."""
    from dispatcher.fleet import load_fleet_file
    from hourglass.brokeracl import render_acl

    acl = (ROOT / "deploy/mosquitto/acl").read_text()
    assert acl == render_acl(load_fleet_file(ROOT / "docs/fleet.example.yaml"))
    assert "pattern" not in acl
    assert "topic write hg/v1/iad1/web-01/#" in acl.splitlines()


def test_broker_refuses_payloads_the_collector_would_refuse() -> None:
    """The broker's message_size_limit is the collector's cap, and its ACL lets collectors
    send their canaries."""
    from collector.decode import MAX_PAYLOAD

    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text().splitlines()
    limits = [line.split()[1] for line in conf if line.startswith("message_size_limit ")]
    assert limits == [str(MAX_PAYLOAD)]
    acl = (ROOT / "deploy/mosquitto/acl").read_text()
    assert "topic write hg/v1/_canary/#" in acl


def test_readme_has_the_two_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "hourglass demo" in readme
    assert "./scripts/test" in readme
    assert (ROOT / ".ci/run").read_text().count("./scripts/test") == 1


def test_ansible_playbook_parses() -> None:
    play = yaml.safe_load((ROOT / "ansible/agent.yml").read_text())
    assert play[0]["roles"] == ["hourglass_agent"]
    tasks = yaml.safe_load((ROOT / "ansible/roles/hourglass_agent/tasks/main.yml").read_text())
    assert any("systemd" in str(t) for t in tasks)
