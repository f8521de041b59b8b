"""A private Mosquitto the agent's tests can stop and start again on the same port."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_port


def mosquitto_binary() -> str:
    """The mosquitto executable, or the test fails naming the package."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.fail("mosquitto is not installed: apt-get install mosquitto")
    return binary


class Broker:
    """Mosquitto with persistence in ``workdir``; restarts keep port, sessions and queues."""

    def __init__(self, workdir: Path, extra_conf: str = "", port: int | None = None) -> None:
        """Write the configuration; ``extra_conf`` replaces the plain anonymous listener."""
        self.workdir, self.port = workdir, port or free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        store = workdir / "mosquitto-store"
        store.mkdir(parents=True, exist_ok=True)
        # started as root, mosquitto would drop to its own user, which cannot write in tmp
        user = "user root\n" if os.geteuid() == 0 else ""
        listener = extra_conf or f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"{listener}persistence true\npersistence_location {store}/\n{user}"
            "max_queued_messages 100000\nlog_dest file " + str(workdir / "mosquitto.log") + "\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start mosquitto and wait until it accepts connections."""
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self) -> None:
        """Stop it by its pid; mosquitto saves sessions and queued messages on the way out."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None
