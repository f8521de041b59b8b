"""The agent's own copy of the topic namespace and the command parser agree with schemas/."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from agent import commands, messages
from collector import gaps
from schemas import topics
from schemas.commands import resend, resend_topic
from schemas.mqtt_contract import command_errors


def test_the_agent_publishes_and_listens_where_the_contract_says() -> None:
    assert messages.TOPIC_ROOT == topics.TOPIC_ROOT
    for kind in ("birth", "telemetry", "event", "state"):
        assert messages.topic("iad1", "web-01", kind) == topics.topic("iad1", "web-01", kind)
    assert commands.command_topic("iad1", "web-01", "resend") == resend_topic("iad1", "web-01")


def test_the_collectors_command_is_valid_and_the_agent_takes_it() -> None:
    cmd = resend("web-01", "iad1", 40, 49, datetime(2026, 12, 3, 9, 0, tzinfo=UTC), gap=7)
    assert command_errors("resend", cmd) == []
    got = commands.parse_resend(json.dumps(cmd).encode(), "web-01", "iad1")
    assert got == commands.Resend(40, 49, 7)
    # the agent's range limit is the one the collector cuts long gaps by
    assert commands.MAX_RANGE == gaps.MAX_RANGE
    too_long = {**cmd, "last_seq": 40 + commands.MAX_RANGE}
    assert isinstance(commands.parse_resend(json.dumps(too_long).encode(), "web-01", "iad1"),
                      str)
