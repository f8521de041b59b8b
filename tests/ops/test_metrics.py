"""Both /metrics of a running system, held to promtool and to what operators ask."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.ops.system import System


def promtool() -> str:
    """The promtool executable, or the test fails naming the package."""
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: install Debian's prometheus package "
                    "(apt-get install prometheus; scripts/test does it)")
    return found


def test_each_metrics_endpoint_passes_promtool(system: System) -> None:
    for process, text in system.metrics().items():
        done = subprocess.run([promtool(), "check", "metrics"], input=text, text=True,
                              capture_output=True, check=False)
        assert done.returncode == 0, f"{process}: {done.stdout}{done.stderr}"


def test_counters_and_histograms_answer_operators(system: System) -> None:
    texts = system.metrics()
    col, disp = texts["collector"], texts["dispatcher"]
    for name in ("hourglass_collector_publish_to_commit_seconds",
                 "hourglass_collector_batch_commit_seconds"):
        assert f"# TYPE {name} histogram" in col
    assert 'hourglass_collector_dead_letters_total{reason="not_json"} 1.0' in col
    assert "# TYPE hourglass_collector_messages_total counter" in col
    assert "hourglass_collector_broker_cert_expiry_timestamp_seconds" in col
    assert "hourglass_collector_broker_ca_expiry_timestamp_seconds" in col  # SSL_CERT_FILE's
    for name in ("hourglass_jobs_time_to_acknowledge_seconds",
                 "hourglass_incidents_time_to_arrive_seconds",
                 "hourglass_incidents_time_to_fix_seconds",
                 "hourglass_escalation_lateness_seconds",
                 "hourglass_notification_delivery_seconds"):
        assert f"# TYPE {name} histogram" in disp
    # the seeded incident: acknowledged at 3 min, on site at 40, fixed at 80 (late), credited
    assert 'hourglass_jobs_time_to_acknowledge_seconds_bucket{le="300.0"} 1.0' in disp
    assert 'hourglass_jobs_time_to_acknowledge_seconds_bucket{le="120.0"} 0.0' in disp
    assert 'hourglass_incidents_time_to_arrive_seconds_bucket{le="2700.0"} 1.0' in disp
    assert 'hourglass_incidents_time_to_fix_seconds_bucket{le="3600.0"} 0.0' in disp
    assert 'hourglass_promise_total{outcome="missed"} 1.0' in disp
    assert "hourglass_credits_issued_total 1.0" in disp
    assert 'hourglass_credits_amount_total{currency="USD"} 22.5' in disp
    assert 'hourglass_notifications_total{channel="email",outcome="sent"} 1.0' in disp
    assert 'hourglass_escalation_lateness_seconds_bucket{kind="risk",le="1.0"} 1.0' in disp
    assert 'hourglass_notification_delivery_seconds_bucket{channel="email",le="2.0"} 1.0' \
        in disp
    assert "hourglass_dead_letters_total 1.0" in disp
