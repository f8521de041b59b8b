"""What a probe is: a named collector of readings, component states and inventory."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from agent.messages import Component, ComponentState, Reading
from agent.root import Root

#: Characters the envelope's component_id forbids (whitespace, MQTT wildcards, "/").
_UNSAFE = re.compile(r"[\s/#+]+")


def component_id(kind: str, name: str) -> str:
    """A schema-safe component id such as ``disk:ZL2ABCD1`` from any name."""
    safe = _UNSAFE.sub("_", name.strip()).strip("_") or "unknown"
    return f"{kind}:{safe[:200]}"


@dataclass(frozen=True)
class ProbeResult:
    """What one probe saw in one collection."""

    readings: tuple[Reading, ...] = ()
    states: tuple[ComponentState, ...] = ()
    inventory: tuple[Component, ...] = ()
    #: component id -> what the probe saw, carried by an event about that component
    evidence: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @staticmethod
    def merge(results: Iterable[ProbeResult]) -> ProbeResult:
        """One result holding all of ``results``."""
        readings: list[Reading] = []
        states: list[ComponentState] = []
        inventory: list[Component] = []
        evidence: dict[str, Mapping[str, Any]] = {}
        for r in results:
            readings += r.readings
            states += r.states
            inventory += r.inventory
            evidence.update(r.evidence)
        return ProbeResult(tuple(readings), tuple(states), tuple(inventory), evidence)


@dataclass(frozen=True)
class ProbeContext:
    """What probes are built with: the host, their intervals and a clock."""

    host: str
    smart_interval_s: float = 900.0
    monotonic: Callable[[], float] = time.monotonic


class Probe(Protocol):
    """A probe: reads the host through a Root and reports what it saw."""

    name: ClassVar[str]

    def collect(self, root: Root) -> ProbeResult:
        """Collect once; absent sources mean an empty result, never an exception."""
        ...


ProbeFactory = Callable[[ProbeContext], Probe]


class Registry:
    """Probes by stable name, built once at start."""

    def __init__(self) -> None:
        """An empty registry."""
        self._factories: dict[str, ProbeFactory] = {}

    def register(self, name: str, factory: ProbeFactory) -> None:
        """Add a probe under a stable name; a name is registered once."""
        if name in self._factories:
            raise ValueError(f"probe {name!r} is already registered")
        self._factories[name] = factory

    def names(self) -> tuple[str, ...]:
        """The registered names, sorted."""
        return tuple(sorted(self._factories))

    def build(self, enabled: Iterable[str], ctx: ProbeContext) -> list[Probe]:
        """Instances of the enabled probes, in the order given."""
        out = []
        for name in enabled:
            if name not in self._factories:
                raise KeyError(f"unknown probe {name!r}; known: {', '.join(self.names())}")
            out.append(self._factories[name](ctx))
        return out
