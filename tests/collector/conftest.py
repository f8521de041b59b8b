"""Collector fixtures: a Mosquitto that can be restarted on its port with its sessions."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_port


class Broker:
    """A private Mosquitto with persistence on, so a restart keeps sessions and queues."""

    def __init__(self, workdir: Path) -> None:
        self.binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(self.binary).exists():
            pytest.fail("mosquitto is not installed: apt-get install mosquitto")
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.conf = workdir / "mosquitto.conf"
        (workdir / "data").mkdir()
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {workdir / 'data'}/\n"
            "max_queued_messages 0\n"  # unlimited: the test counts every message
            # started as root, Mosquitto would drop to a user that cannot write workdir
            "user root\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self) -> None:
        """Start (or start again) on the same port."""
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self) -> None:
        """Stop gracefully: Mosquitto writes its sessions and queued messages to disk."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
            self.proc = None

    def restart(self) -> None:
        """Stop, then start on the same port from the saved state."""
        self.stop()
        self.start()
        self.restarts += 1


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A restartable private Mosquitto; yields the Broker (its `url` for clients)."""
    b = Broker(tmp_path)
    b.start()
    try:
        yield b
    finally:
        b.stop()
