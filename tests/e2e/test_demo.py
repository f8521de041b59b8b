"""`hourglass demo` as a newcomer runs it: pages up, an incident within two minutes, clean stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

# long, and mostly waiting on real components: scripts/test runs it in the second pytest,
# beside the property tests, so the two halves take about as long
pytestmark = pytest.mark.beside


@pytest.mark.parametrize("broker", ["auto", "embedded"])
def test_demo_serves_pages_and_an_incident_appears(tmp_path: Path, broker: str) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HOURGLASS_DATABASE_URL", "HOURGLASS_MQTT_URL")}  # embedded defaults
    port = free_port()
    out = tmp_path / "demo.out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hourglass.cli", "demo", "--data", str(tmp_path / "data"),
         "--port", str(port), "--broker", broker],
        env=env, stdout=out.open("w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "Ctrl-C stops everything" not in out.read_text():
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.5)
        text = out.read_text()
        status_link = re.search(r"customer status \(Acme\): +(http://\S+)/signin/(\S+)", text)
        tech_link = re.search(r"technician phone \(Ana\): +(http://\S+)/signin/(\S+)", text)
        assert status_link, text
        assert tech_link, text
        assert "#token=" not in text  # no secret in a lasting URL
        base = status_link[1]
        customer = httpx.Client(base_url=base, headers={"Origin": base})
        signed = customer.post(f"/signin/{status_link[2]}")
        assert signed.status_code == 303, signed.text
        assert signed.headers["location"] == "/status"
        for path in ("/status", "/tech"):
            page = customer.get(path)
            assert page.status_code == 200
            assert "<html" in page.text.lower()
        started = time.monotonic()
        items: list[dict[str, object]] = []
        while not items and time.monotonic() - started < 120:
            items = customer.get("/api/v1/incidents").json()["items"]
            time.sleep(1)
        assert items, "no incident within two minutes"
        assert items[0]["customer"] == "acme"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("the demo did not stop within 40 s of Ctrl-C")
    assert code == 0, out.read_text()[-2000:]
