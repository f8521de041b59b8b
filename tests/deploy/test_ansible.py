"""The ansible roles run for real: site.yml with `-c local` into a temporary root, twice.

`hourglass_root` moves every path the roles write under one folder per inventory host and
skips installing packages and starting services; everything else is the production run
(the CA and certificates signed by `hourglass pki`, the ACL from the fleet file, the
migrations on a real PostgreSQL). The second run must change nothing. Then the broker and
the collector and the agent are started from what the roles installed: the agent's messages
must reach the database over TLS, and its certificate may not write under another host.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest

from tests.agent.brokers import mosquitto_binary
from tests.agent.conftest import SMARTCTL
from tests.agent.test_mqtt_auth import NOT_AUTHORIZED, Client
from tests.conftest import ADMIN_URL, eventually, free_port, wait_port
from tests.deploy.shipped import ROOT

# long, and mostly waiting on real components: scripts/test runs it in the second pytest,
# beside the property tests, so the two halves take about as long
pytestmark = pytest.mark.beside

ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                   re.MULTILINE)


def tool(name: str) -> str:
    """An executable of this virtualenv, or the test fails naming what to install."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]' (ansible-core, "
                    "ansible-lint)")
    return str(path)


@pytest.fixture
def empty_db() -> Iterator[str]:
    """A new, empty database: the server role's migrations create the schema."""
    name = f"hg_ansible_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def inventory(tmp: Path, db_url: str, probe_root: Path, tls: int, metrics: int) -> Path:
    """The example inventory's shape, pointed at this machine and a temporary root."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
             "ansible_become": False}
    inv = {"all": {
        "vars": {
            **local,
            "hourglass_root": str(tmp / "root") + "/{{ inventory_hostname }}",
            "hourglass_cli": str(BIN / "hourglass"),
            "hourglass_pki_dir": str(tmp / "pki"),
            "hourglass_fleet_file": str(ROOT / "docs" / "fleet.example.yaml"),
            "hourglass_mqtt_url": f"mqtts://127.0.0.1:{tls}",
            "hourglass_database_url": db_url,
        },
        "children": {
            "hourglass_brokers": {"hosts": {"mqtt1": {
                "hourglass_broker_names": ["127.0.0.1", "localhost"],
                "hourglass_broker_tls_port": tls,
                # started by this test as this user, Mosquitto keeps it (root would drop to
                # the mosquitto user, which cannot read the temporary root)
                "hourglass_broker_user": "root" if os.geteuid() == 0 else os.environ.get(
                    "USER", "nobody")}}},
            "hourglass_servers": {"hosts": {"app1": {
                "hourglass_server_bin": str(BIN / "hourglass"),
                "hourglass_server_collector_metrics_addr": f"127.0.0.1:{metrics}"}}},
            "hourglass_agents": {"hosts": {"web-01": {
                "hourglass_site": "iad1", "hourglass_agent_bin": str(BIN / "hourglass-agent"),
                "hourglass_agent_probe_root": str(probe_root),
                "hourglass_agent_interval_s": 1}}},
        }}}
    path = tmp / "inventory.yml"
    path.write_text(json.dumps(inv))  # JSON is YAML
    return path


def playbook(inv: Path, tmp: Path) -> tuple[dict[str, int], float, str]:
    """Run site.yml once; the changed count of each host, the seconds it took, the output."""
    env = {**os.environ, "ANSIBLE_HOME": str(tmp / "ansible-home"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_RETRY_FILES_ENABLED": "0", "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    start = time.monotonic()
    done = subprocess.run([tool("ansible-playbook"), "-c", "local", "-i", str(inv), "site.yml"],
                          cwd=ANSIBLE, env=env, capture_output=True, text=True, timeout=240,
                          check=False)
    took = time.monotonic() - start
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    changed = {host: int(c) for host, _, c, _, _ in RECAP.findall(done.stdout)}
    assert set(changed) == {"mqtt1", "app1", "web-01"}, done.stdout[-3000:]
    return changed, took, done.stdout


def probe_root(tmp: Path) -> Path:
    """A replay root with one healthy disk, so the agent has something to report."""
    root = tmp / "probe-root"
    (root / "cmd" / "smartctl").mkdir(parents=True)
    shutil.copy(SMARTCTL / "sata-hdd-healthy-hgst-he10.json", root / "cmd/smartctl/sda.json")
    return root


def stored(db_url: str) -> set[str]:
    """The kinds of web-01's messages the collector stored."""
    with psycopg.connect(db_url) as conn:
        return {r[0] for r in conn.execute(
            "SELECT DISTINCT kind FROM ingest_keys WHERE host_id = 'web-01'")}


def start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as f:
        return subprocess.Popen(argv, stdout=f, stderr=f)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=20)


def test_site_yml_installs_twice_then_the_agent_reaches_the_database_over_tls(
        tmp_path: Path, empty_db: str) -> None:
    tls = free_port()
    inv = inventory(tmp_path, empty_db, probe_root(tmp_path), tls, free_port())
    first, first_s, _ = playbook(inv, tmp_path)
    second, second_s, out = playbook(inv, tmp_path)
    print(f"\nansible site.yml: first run {first_s:.1f} s changed={first}, "
          f"second run {second_s:.1f} s changed={second}")
    assert all(n > 0 for n in first.values()), first
    assert second == {"mqtt1": 0, "app1": 0, "web-01": 0}, out[-4000:]

    root = tmp_path / "root"
    assert (tmp_path / "pki" / "ca.key").stat().st_mode & 0o777 == 0o600
    tls_dir = root / "web-01" / "etc" / "hourglass" / "tls"
    assert (tls_dir / "agent.key").stat().st_mode & 0o777 == 0o600
    for unit in ("hourglass-collector", "hourglass-dispatcher"):
        assert (root / "app1" / f"etc/systemd/system/{unit}.service").is_file()
    with psycopg.connect(empty_db) as conn:  # the server role migrated the empty database
        assert conn.execute("SELECT to_regclass('incidents')").fetchone() == ("incidents",)

    server_conf = str(root / "app1/etc/hourglass/hourglass.yaml")
    subprocess.run([str(BIN / "hourglass"), "--config", server_conf, "load",
                    str(ROOT / "docs/fleet.example.yaml")], check=True, capture_output=True)
    procs = [start([mosquitto_binary(), "-c", str(root / "mqtt1/etc/mosquitto/mosquitto.conf")],
                   tmp_path / "mosquitto.out")]
    try:
        wait_port(tls)
        procs.append(start([str(BIN / "hourglass"), "--config", server_conf, "collector", "run"],
                           tmp_path / "collector.log"))
        procs.append(start([str(BIN / "hourglass-agent"), "run", "--config",
                            str(root / "web-01/etc/hourglass/agent.yaml")],
                           tmp_path / "agent.log"))
        eventually(lambda: {"birth", "telemetry"} <= stored(empty_db) or None, 40,
                   "web-01's birth and telemetry stored by the installed collector "
                   f"({(tmp_path / 'collector.log').read_text()[-1500:]}"
                   f"{(tmp_path / 'agent.log').read_text()[-1500:]})")
        # web-01's installed certificate may not write under another host
        impostor = Client(tls, "web-01-impostor", ca=SimpleNamespace(cert=tls_dir / "ca.pem"),
                          pair=SimpleNamespace(cert=tls_dir / "agent.pem",
                                               key=tls_dir / "agent.key"))
        try:
            assert impostor.accepted.wait(5)
            assert impostor.publish("hg/v1/iad1/web-02/event").value == NOT_AUTHORIZED
        finally:
            impostor.close()
    finally:
        for proc in reversed(procs):
            stop(proc)
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT count(*) FROM ingest_keys WHERE host_id = 'web-02'"
                            ).fetchone() == (0,)


def test_ansible_lint_production_profile_is_clean(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "NO_COLOR": "1",
           "ANSIBLE_HOME": str(tmp_path / "ansible-home")}
    done = subprocess.run([tool("ansible-lint"), "--profile", "production", "--offline", "."],
                          cwd=ANSIBLE, env=env, capture_output=True, text=True, timeout=240,
                          check=False)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]


def directives(text: str) -> dict[str, list[str]]:
    """A Mosquitto configuration's directives, by name, in order (comments dropped)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            out.setdefault(key, []).append(value)
    return out


def test_the_broker_role_renders_the_shipped_configuration() -> None:
    """roles/hourglass_broker's template and deploy/mosquitto/mosquitto.conf say the same
    thing, but for paths and the log destination."""
    import jinja2

    template = (ANSIBLE / "roles/hourglass_broker/templates/mosquitto.conf.j2").read_text()
    rendered = jinja2.Template(template).render(
        hourglass_broker_root="", hourglass_broker_dir="/mosquitto/config",
        hourglass_broker_user="mosquitto", hourglass_broker_tls_port=8883)
    role = directives(rendered.replace("/var/lib/mosquitto/", "/mosquitto/data/"))
    shipped = directives((ROOT / "deploy/mosquitto/mosquitto.conf").read_text())
    assert role.pop("user") == ["mosquitto"]
    assert role.pop("log_dest") == ["file /var/log/mosquitto/mosquitto.log"]
    assert role == shipped
