"""What a probe is: a named collector of readings, component states and inventory."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from agent.messages import Component, ComponentState, Reading
from agent.probes.coverage import NO_DEVICES, WORKING, Coverage
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
    #: what the probe could watch (probes that run a tool say; the birth carries it)
    coverage: tuple[Coverage, ...] = ()

    def covered(self, probe: str) -> ProbeResult:
        """This result with its probe's coverage: its own, or (a probe that runs no tool)
        working when it read something and no_devices when there was nothing to read."""
        if self.coverage:
            return self
        found = self.readings or self.states or self.inventory
        cov = Coverage(probe, WORKING, f"{len(self.readings)} readings, {len(self.states)} "
                       "part states") if found else Coverage(probe, NO_DEVICES,
                                                             "nothing to read on this host")
        return ProbeResult(self.readings, self.states, self.inventory, self.evidence, (cov,))

    @staticmethod
    def merge(results: Iterable[ProbeResult]) -> ProbeResult:
        """One result holding all of ``results``."""
        readings: list[Reading] = []
        states: list[ComponentState] = []
        inventory: list[Component] = []
        evidence: dict[str, Mapping[str, Any]] = {}
        coverage: list[Coverage] = []
        for r in results:
            readings += r.readings
            states += r.states
            inventory += r.inventory
            evidence.update(r.evidence)
            coverage += r.coverage
        return ProbeResult(tuple(readings), tuple(states), tuple(inventory), evidence,
                           tuple(coverage))


class StateStore(Protocol):
    """Small values a probe keeps across restarts and reboots (the spool implements it)."""

    def load_state(self, key: str) -> str | None:
        """The value stored under ``key``, or None."""
        ...

    def save_state(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` durably."""
        ...


class MemoryState:
    """A StateStore that forgets at exit: for ``once`` and for tests."""

    def __init__(self) -> None:
        """An empty store."""
        self.values: dict[str, str] = {}

    def load_state(self, key: str) -> str | None:
        """The value stored under ``key``, or None."""
        return self.values.get(key)

    def save_state(self, key: str, value: str) -> None:
        """Keep ``value`` under ``key`` until the process ends."""
        self.values[key] = value


class Memo:
    """A probe's JSON state under one key prefix, written only when it changed."""

    def __init__(self, store: StateStore, prefix: str) -> None:
        """Values live under ``prefix:name`` in ``store``."""
        self.store, self.prefix = store, prefix
        self._cache: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        """The stored JSON value of ``name``, or None."""
        if name not in self._cache:
            text = self.store.load_state(f"{self.prefix}:{name}")
            try:
                self._cache[name] = json.loads(text) if text is not None else None
            except ValueError:
                self._cache[name] = None  # a damaged value is forgotten, not fatal
        return self._cache[name]

    def put(self, name: str, value: Any) -> None:
        """Store ``value`` (JSON) when it differs from what is stored."""
        if self.get(name) != value:
            self._cache[name] = value
            self.store.save_state(f"{self.prefix}:{name}", json.dumps(value, sort_keys=True))


@dataclass(frozen=True)
class Limits:
    """Thresholds of the probes' predictions; each default carries its reason."""

    #: Correctable ECC errors per DIMM within ``ecc_window_s`` that predict a failure:
    #: 24 a day is the issue's default (about one an hour is no longer background noise).
    ecc_ce_threshold: int = 24
    #: The window of that rate: one day.
    ecc_window_s: float = 86400.0
    #: Corrected machine checks on one bank within ``ecc_window_s`` that predict a failure
    #: (a single corrected MCE is routine; ten on one bank a day is a part going bad).
    mce_corrected_threshold: int = 10
    #: A temperature above its high limit this long is a cooling problem worth a job.
    temp_high_sustained_s: float = 600.0
    #: An md array rebuilding or resyncing longer than this (a day) predicts trouble.
    raid_rebuild_limit_s: float = 86400.0
    #: NVMe available spare (percent) below which a warning is raised when the drive
    #: reports no threshold of its own (10 is what most drives report as theirs).
    nvme_spare_threshold: int = 10
    #: NVMe percentage_used from which the drive counts as worn (the issue's 90).
    nvme_wear_percent: int = 90

    def validate(self) -> None:
        """Reject values no probe can work with; the message names the key."""
        for key, low in (
            ("ecc_ce_threshold", 1),
            ("ecc_window_s", 60.0),  # shorter than a minute is no rate at a 30 s interval
            ("mce_corrected_threshold", 1),
            ("temp_high_sustained_s", 0.0),
            ("raid_rebuild_limit_s", 60.0),
            ("nvme_spare_threshold", 0),
            ("nvme_wear_percent", 1),
        ):
            if getattr(self, key) < low:
                env = f"HOURGLASS_AGENT_LIMITS_{key.upper()}"
                raise ValueError(f"key 'limits.{key}' (or {env}): must be at least {low}")


@dataclass(frozen=True)
class ProbeContext:
    """What probes are built with: the host, intervals, clocks, limits and durable state."""

    host: str
    smart_interval_s: float = 900.0
    monotonic: Callable[[], float] = time.monotonic
    #: Wall-clock seconds: for windows that must survive a reboot (monotonic restarts).
    wall: Callable[[], float] = time.time
    limits: Limits = field(default_factory=Limits)
    state: StateStore = field(default_factory=MemoryState)


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
