"""Operating under systemd: notify protocol and watchdog, the unit's hardening, check."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.sdnotify import Watchdog, notify, watchdog_interval
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "agent" / "hourglass-agent.service"


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket bound where $NOTIFY_SOCKET will point, as systemd binds it."""
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.2)
    yield s, path
    s.close()


def receive(s: socket.socket, seconds: float) -> list[str]:
    """Every datagram that arrives within ``seconds``."""
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            got.append(s.recv(4096).decode())
        except TimeoutError:
            continue
    return got


def test_daemon_says_ready_pings_the_watchdog_and_says_stopping(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    config = tmp_path / "agent.yaml"
    # no broker listens: the agent must still be ready and alive (it spools)
    config.write_text(f"site: iad1\nhost: web-01\nmqtt_url: mqtt://127.0.0.1:{free_port()}\n"
                      f"spool_path: {tmp_path / 'spool.db'}\nroot: {tmp_path}\nprobes: [mdstat]\n"
                      "interval_s: 1\n")
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
    proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "--config", str(config)],
                            env=env, stderr=subprocess.DEVNULL)
    try:
        first = receive(sock, 3.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        last = receive(sock, 0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert first[0] == "READY=1"
    pings = first[1:]
    assert set(pings) == {"WATCHDOG=1"}
    assert len(pings) >= 8  # every 0.2 s (half of 0.4 s) for about 2.5 s
    assert "STOPPING=1" in last


def test_abstract_socket_names_work() -> None:
    name = f"hg-test-{uuid.uuid4().hex[:8]}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind("\0" + name)
        s.settimeout(2)
        assert notify("READY=1", {"NOTIFY_SOCKET": "@" + name})
        assert s.recv(100) == b"READY=1"


def test_without_systemd_everything_is_a_no_op() -> None:
    assert notify("READY=1", {}) is False
    assert watchdog_interval({}) is None
    Watchdog(env={}).ping()  # nothing to send to, nothing raised


def test_watchdog_interval_is_half_the_timeout_and_only_for_our_pid() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) \
        == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None


def test_watchdog_pings_at_most_once_per_interval(
    notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    now = [100.0]
    dog = Watchdog({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"}, lambda: now[0])
    for t in (100.0, 100.5, 100.9, 101.0, 101.5, 102.0):
        now[0] = t
        dog.ping()
    assert receive(sock, 0.3) == ["WATCHDOG=1"] * 3  # at 100, 101 and 102


def _unit() -> dict[str, list[str]]:
    """The unit's directives, each with all its values (DeviceAllow= repeats)."""
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_is_hardened_and_notifies() -> None:
    unit = _unit()
    assert unit["Type"] == ["notify"]
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["NoNewPrivileges"] == ["yes"]
    assert unit["CapabilityBoundingSet"] == ["CAP_SYS_RAWIO CAP_SYS_ADMIN"]
    assert int(unit["WatchdogSec"][0]) >= 120  # above smartctl's 60 s tool timeout
    assert unit["StateDirectory"] == ["hourglass-agent"]
    assert unit["DevicePolicy"] == ["closed"]
    # the default spool is in the state directory, the only writable place
    assert "/var/lib/hourglass-agent/spool.db" in (REPO / "agent/agent.sample.yaml").read_text()
    assert any("check --config" in v for v in unit["ExecStartPre"])


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is not installed: apt-get install systemd")
    # verify wants the executables to exist: point them at one that does
    (tmp_path / UNIT.name).write_text(UNIT.read_text().replace("/usr/bin/hourglass-agent",
                                                               "/bin/true"))
    done = subprocess.run([analyze, "verify", str(tmp_path / UNIT.name)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "Unknown" not in done.stderr, done.stderr


def test_unit_and_sample_ship_with_the_package() -> None:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    shipped = data["tool"]["setuptools"]["package-data"]["agent"]
    assert set(shipped) >= {"agent.sample.yaml", "hourglass-agent.service"}


def test_check_names_the_key_of_a_missing_file(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(f"site: iad1\nmqtt_url: mqtts://127.0.0.1:8883\nspool_path: "
                      f"{tmp_path / 'spool.db'}\ntls:\n  ca_file: {tmp_path / 'nope.pem'}\n")
    done = subprocess.run([sys.executable, "-m", "agent", "check", "--config", str(config)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert f"{config}: key 'tls.ca_file'" in done.stderr
    assert "Traceback" not in done.stderr


def test_check_accepts_the_sample(tmp_path: Path) -> None:
    sample = (REPO / "agent" / "agent.sample.yaml").read_text()
    config = tmp_path / "agent.yaml"
    config.write_text(sample.replace("/var/lib/hourglass-agent", str(tmp_path / "state")))
    done = subprocess.run([sys.executable, "-m", "agent", "check", "--config", str(config)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout
