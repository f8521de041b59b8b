"""docker-compose.yml cannot run here (no Docker engine); check what can be checked."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from hourglass.cli import parser
from hourglass.config import Config, load_config, mqtt_endpoint

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


#: Files part B of issue 17 adds (Prometheus rules, Grafana provisioning); until both
#: branches are merged one tree may lack them, and only these may be missing.
_VAR = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with nothing set: the default (a required one, "x")."""
    return _VAR.sub(lambda m: m.group(3) if m.group(2) == "-" else "x", value)


def compose() -> dict[str, Any]:
    """docker-compose.yml's services, with variables as an unset environment gives them."""
    services: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())[
        "services"]
    for svc in services.values():
        env = svc.get("environment", {})
        svc["environment"] = {k: interpolate(str(v)) for k, v in env.items()}
    return services


def port_of(addr: str) -> int:
    return int(addr.rpartition(":")[2])


def test_compose_has_the_production_shape() -> None:
    services = compose()
    assert {"db", "broker", "emqx", "migrate", "collector-1", "collector-2", "dispatcher-1",
            "dispatcher-2", "prometheus", "grafana"} <= set(services)
    assert services["db"]["image"].startswith("timescale/timescaledb:")
    assert services["emqx"]["profiles"] == ["emqx"]
    ids = {services[c]["environment"]["HOURGLASS_COLLECTOR_CLIENT_ID"]
           for c in ("collector-1", "collector-2")}
    assert len(ids) == 2, "two collectors with one client id drop each other's session"


def test_compose_services_use_real_commands_and_known_settings() -> None:
    known = config_env_names()
    for name, svc in compose().items():
        for key in svc["environment"]:
            if key.startswith("HOURGLASS_"):
                assert key in known, f"{name} sets {key}, which no configuration key reads"
        if svc.get("build") is not None:
            assert svc["build"] == "."
            parser().parse_args(svc["command"])  # exits (fails the test) on an unknown command
            load_config(None, env=svc["environment"])  # the values parse and validate too


def test_compose_ports_are_the_ones_the_code_and_the_broker_use() -> None:
    services, defaults = compose(), Config()
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text().splitlines()
    listeners = {int(line.split()[1]) for line in conf if line.startswith("listener ")}
    assert listeners == {8883}  # one door: TLS with client certificates
    assert services["broker"]["ports"] == ["8883:8883"]
    for c in ("collector-1", "collector-2"):
        env = services[c]["environment"]
        assert mqtt_endpoint(env["HOURGLASS_MQTT_URL"]) == ("broker", 8883, True)
        assert port_of(env["HOURGLASS_COLLECTOR_HTTP_ADDR"]) == port_of(
            defaults.collector.http_addr)
        mounts = [v.split(":")[1] for v in services[c]["volumes"]]
        for key in ("HOURGLASS_MQTT_CA_FILE", "HOURGLASS_MQTT_CERT_FILE",
                    "HOURGLASS_MQTT_KEY_FILE"):
            assert any(env[key].startswith(m + "/") for m in mounts), f"{c}: {key}"
    for d in ("dispatcher-1", "dispatcher-2"):
        port = port_of(services[d]["environment"]["HOURGLASS_HTTP_ADDR"])
        assert port == defaults.http_port
        assert all(p.endswith(f":{port}") for p in services[d]["ports"])
    prom = ROOT / "deploy/prometheus/prometheus.yml"
    if prom.exists():  # part B's file: every target is a service on its metrics port
        targets = [t for job in yaml.safe_load(prom.read_text())["scrape_configs"]
                   for sc in job.get("static_configs", []) for t in sc["targets"]]
        for target in targets:
            host, _, port = target.partition(":")
            addr = services[host]["environment"].get(
                "HOURGLASS_COLLECTOR_HTTP_ADDR", services[host]["environment"].get(
                    "HOURGLASS_HTTP_ADDR"))
            assert addr is not None, f"{target}: {host} serves no /metrics"
            assert port_of(addr) == int(port), target


def test_every_file_compose_mounts_exists() -> None:
    missing = []
    for name, svc in compose().items():
        for vol in svc.get("volumes", []):
            host = vol.split(":")[0]
            if not host.startswith("./"):
                continue  # a named volume
            if not (ROOT / host).exists():
                missing.append(f"{name}: {host}")
    assert missing == []
    # what mosquitto.conf reads that the operator makes (secrets are never in the repo):
    header = (ROOT / "docker-compose.yml").read_text().split("services:")[0]
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    for path in re.findall(r"/mosquitto/config/(\S+)", conf):
        assert (ROOT / "deploy/mosquitto" / path).exists() or f"deploy/mosquitto/{path}" in \
            header or path.startswith("certs/") and "deploy/mosquitto/certs/" in header, path


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


def test_the_emqx_profile_has_the_same_rules_and_only_the_certificate_door() -> None:
    """Written, not run: no EMQX here. Its acl.conf is `hourglass broker acl --format emqx`
    of the example fleet; the listeners where a client names itself are off."""
    from dispatcher.fleet import load_fleet_file
    from hourglass.brokeracl import render_emqx_acl

    acl = (ROOT / "deploy/emqx/acl.conf").read_text()
    assert acl == render_emqx_acl(load_fleet_file(ROOT / "docs/fleet.example.yaml"))
    rules = [line for line in acl.splitlines() if line and not line.startswith("%%")]
    assert all(re.fullmatch(r"\{(allow|deny), .*\}\.", r) for r in rules), rules
    assert rules[-1] == "{deny, all}."
    assert '{allow, {username, "web-01"}, publish, ["hg/v1/iad1/web-01/#"]}.' in rules
    env = compose()["emqx"]["environment"]
    assert env["EMQX_MQTT__PEER_CERT_AS_USERNAME"] == "cn"
    assert env["EMQX_AUTHORIZATION__NO_MATCH"] == "deny"
    for door in ("TCP", "WS", "WSS"):
        assert env[f"EMQX_LISTENERS__{door}__DEFAULT__ENABLE"] == "false"
    assert "/opt/emqx/etc/hourglass-acl.conf" in env["EMQX_AUTHORIZATION__SOURCES"]


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
