"""The MQTT topic namespace (design.md's contract): hg/v1/{site}/{host}/{kind}, and the
commands to one agent under hg/v1/{site}/{host}/cmd/{command}.

The collector and the dispatcher build topics here; the agent, which imports nothing
outside agent/, has its own copy in agent/messages.py and agent/commands.py, held to this
one by tests/test_contract_topics.py.
"""

from __future__ import annotations

TOPIC_ROOT = "hg/v1"


def topic(site: str, host: str, kind: str) -> str:
    """The topic a host publishes one kind of message on."""
    return f"{TOPIC_ROOT}/{site}/{host}/{kind}"


def command_topic(site: str, host: str, command: str) -> str:
    """The topic one command to one host goes on."""
    return f"{TOPIC_ROOT}/{site}/{host}/cmd/{command}"
