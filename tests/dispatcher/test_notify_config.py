"""Notification, credit-class and auto-close configuration: defaults, overrides, bad values."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from agent.settings import ConfigError
from dispatcher.domain import credit
from dispatcher.service.settings import timer_policy
from hourglass.config import load_config


def test_defaults_are_the_published_terms() -> None:
    cfg = load_config(None, {})
    p = timer_policy(cfg.dispatcher)
    assert p.auto_close_after == timedelta(hours=72)
    assert p.credit_classes == credit.ClassPolicy()
    assert (p.credit_classes.hardware_minutes, p.credit_classes.power_minutes,
            p.credit_classes.network_minutes) == (60, 30, 30)
    assert cfg.notify.smtp_host == ""
    assert cfg.notify.max_attempts == 8


def test_file_and_environment_set_them(tmp_path: Path) -> None:
    f = tmp_path / "hg.yaml"
    f.write_text("dispatcher:\n  auto_close_hours: 24\n  credit:\n    power_minutes: 20\n"
                 "    network_failures: [nic_carrier_lost, network, uplink_down]\n"
                 "notify:\n  smtp_host: mail.example.net\n"
                 "  billing_webhook_url: https://billing.example.net/credits\n"
                 "  billing_webhook_secret: s\n")
    cfg = load_config(f, {"HOURGLASS_DISPATCHER_CREDIT_HARDWARE_MINUTES": "45",
                          "HOURGLASS_NOTIFY_SMTP_PORT": "2525"})
    p = timer_policy(cfg.dispatcher)
    assert p.auto_close_after == timedelta(hours=24)
    assert p.credit_classes.period_minutes("host_down") == 20
    assert p.credit_classes.period_minutes("smart_failed") == 45
    assert p.credit_classes.failure_class("uplink_down") == credit.FailureClass.NETWORK
    assert (cfg.notify.smtp_host, cfg.notify.smtp_port) == ("mail.example.net", 2525)


def test_the_off_shift_window_reaches_the_dispatcher_loop() -> None:
    """dispatcher.proactive_off_shift_minutes is what Engine hands the proactive pass."""
    assert timer_policy(load_config(None, {}).dispatcher).proactive_off_shift == timedelta(
        minutes=60)
    cfg = load_config(None, {"HOURGLASS_DISPATCHER_PROACTIVE_OFF_SHIFT_MINUTES": "15"})
    assert timer_policy(cfg.dispatcher).proactive_off_shift == timedelta(minutes=15)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("dispatcher:\n  auto_close_hours: 0\n", ["hg.yaml", "dispatcher.auto_close_hours"]),
        ("dispatcher:\n  credit:\n    power_minutes: -1\n",
         ["hg.yaml", "dispatcher.credit.power_minutes"]),
        ("dispatcher:\n  credit:\n    power_failures: [host_down, network]\n",
         ["hg.yaml", "power_failures", "network listed in both"]),
        ("notify:\n  billing_webhook_url: https://b.example.net/x\n",
         ["hg.yaml", "notify.billing_webhook_secret", "required"]),
        ("notify:\n  billing_webhook_url: billing\n  billing_webhook_secret: s\n",
         ["hg.yaml", "notify.billing_webhook_url"]),
        ("notify:\n  max_attempts: 0\n", ["hg.yaml", "notify.max_attempts"]),
        ("notify:\n  smtp_hots: x\n", ["hg.yaml", "notify.smtp_hots", "unknown key"]),
    ],
)
def test_bad_values_name_file_and_key(tmp_path: Path, text: str, words: list[str]) -> None:
    f = tmp_path / "hg.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(f, {})
    for word in words:
        assert word in str(err.value)
