"""One host's way out: its spool, its publisher, and what every connection starts and ends
with (the last will, birth and online, the planned stop).

The daemon, each target of the SNMP proxy and each virtual host of the simulator go out
through a Link, so they number, store and send their messages the same way: stored
before it is sent, kept after the broker's PUBACK for a resend, and a will whose seq the
birth names, so the collector can tell that seq apart from a lost message.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Protocol

from agent.config import AgentConfig
from agent.core import Outgoing
from agent.publisher import Publisher, Will
from agent.spool import Spool

log = logging.getLogger(__name__)


class Announcer(Protocol):
    """What builds a host's birth and state messages (a Reporter, or a simulated host)."""

    def birth(self, session: str | None = None, will_seq: int | None = None) -> Outgoing:
        """The birth of a new connection."""
        ...

    def state(
        self, online: bool, *, reason: str | None = None, session: str | None = None,
        will_seq: int | None = None,
    ) -> Outgoing:
        """A state message."""
        ...


class Link:
    """A host's spool and publisher, wired to its announcer."""

    def __init__(
        self, cfg: AgentConfig, spool: Spool, announcer: Announcer, *,
        rng: random.Random | None = None, monotonic: Callable[[], float] = time.monotonic,
        v5: bool = True,
    ) -> None:
        """The publisher connects on its first ``step`` (MQTT 5, or 3.1.1 with ``v5=False``)."""
        self.spool, self.announcer = spool, announcer
        self._will: tuple[str, int] | None = None  # (session, seq) of the latest will
        self.publisher = Publisher(cfg, spool, will_for=self._will_for,
                                   on_session=self._on_session, rng=rng, monotonic=monotonic,
                                   v5=v5)

    def put(self, msg: Outgoing) -> None:
        """Store a message (committing its seq); the publisher sends it."""
        self.spool.put(msg.topic, msg.encode(), msg.qos, msg.retain, msg.kind,
                       seq=msg.payload["seq"])

    def _will_for(self, session: str) -> Will:
        """The will of a new connection; its seq is committed now (the broker holds it)."""
        msg = self.announcer.state(False, reason="lost", session=session)
        seq = int(msg.payload["seq"])
        self.spool.keep_seq(seq)
        self._will = (session, seq)
        log.info("%s: last will of session %s holds seq %d", self.spool.host, session, seq)
        return Will(msg.topic, msg.encode(), seq)

    def _on_session(self, session: str) -> None:
        """Connected: birth and online, naming the will's seq."""
        will_seq = self._will[1] if self._will and self._will[0] == session else None
        self.put(self.announcer.birth(session, will_seq=will_seq))
        self.put(self.announcer.state(True, session=session, will_seq=will_seq))

    def stop(self, flush_s: float) -> bool:
        """A planned stop: say so (no incident), wait up to ``flush_s`` for the broker to
        take what is stored, disconnect. True when everything went."""
        self.put(self.announcer.state(False, reason="shutdown",
                                      session=self.publisher.session))
        done = self.publisher.flush(flush_s)
        self.publisher.close()
        return done
