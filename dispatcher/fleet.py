"""The fleet file: sites, people, customers with contracts and hosts, spares. Pure parsing.

Owns the shape of `hourglass load FILE` (design.md, "The fleet file"): `parse_fleet` turns
the YAML value into frozen dataclasses or raises `FleetError` naming the file, the key
path (`customers[0].hosts[1].site`), the reason and what to do. `fleet_store` writes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from dispatcher.domain.windows import Window, WindowError, parse_windows
from schemas.states import StaffRole

#: Skills a technician may list (dispatcher/domain/assign.py SKILL_FOR_KIND maps kinds to them).
SKILLS = frozenset({"disk", "memory", "fan", "psu", "nic", "cpu", "raid", "host"})
#: Component kinds (schemas/mqtt/envelope.json component_kind) that are parts one can stock.
SPARE_KINDS = frozenset({"disk", "dimm", "psu", "fan", "nic", "cpu", "raid"})
#: Ids travel in MQTT envelopes and URLs: the `ident` pattern of schemas/mqtt/envelope.json.
LOCATION_MAX = 64  # a spare's location fits one line of the job card
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_SHIFT = re.compile(r"^([0-2][0-9]):([0-5][0-9])-([0-2][0-9]):([0-5][0-9])$")
_INT_MAX = 2**31 - 1  # the schema's integer columns (unit, count)
_CURRENCY = re.compile(r"^[A-Z]{3}$")  # ISO 4217 alphabetic code
#: End of an all-day shift: Python's time stops at 23:59:59.999999; the store writes 24:00.
END_OF_DAY = time.max


class FleetError(ValueError):
    """The fleet file is wrong; the message names the file, the key path and what to do."""


@dataclass(frozen=True)
class Site:
    """A datacenter site; `manager` is the id of the technician escalations go to."""

    id: str
    name: str
    timezone: str = "UTC"
    manager: str | None = None
    #: Minutes to walk to a rack by room ("*": any other room); the assignment scores with it.
    walk_minutes: tuple[tuple[str, float], ...] = ()
    spare_pickup_minutes: float = 3.0  # fetching a part from the store room
    spares_low_stock: int = 1  # a part with this many available (or fewer) raises an alert


@dataclass(frozen=True)
class Technician:
    """A person on site; an all-day shift is 00:00 to END_OF_DAY."""

    id: str
    name: str
    site: str
    role: StaffRole = StaffRole.TECHNICIAN
    skills: tuple[str, ...] = ()
    shift_start: time = time(0)
    shift_end: time = END_OF_DAY
    email: str | None = None  # notification channels (dispatcher/store/outbox.py)
    webhook: str | None = None


@dataclass(frozen=True)
class AccountPerson:
    """An account manager or team member: not on a site, reached by email or webhook."""

    id: str
    name: str
    email: str | None = None
    webhook: str | None = None


@dataclass(frozen=True)
class Contract:
    """A customer's SLA and credit terms."""

    sla_minutes: float = 60.0
    credit_percent: Decimal = Decimal(5)
    # None: the period of the failure's class (dispatcher.credit config: hardware 60 min,
    # power and network 30); a contract that names one uses it for every class.
    credit_period_minutes: float | None = None
    credit_cap_percent: Decimal = Decimal(100)
    # 'always': our technicians enter the customer's cage without asking; 'ask': the customer
    # grants or denies access per incident on /status (a denial pauses the clock)
    cage_access: str = "always"


#: The values of `contract.cage_access`; mirrored by the CHECK on customers.cage_access.
CAGE_ACCESS = ("always", "ask")


@dataclass(frozen=True)
class Host:
    """A customer's server at a site, with its fee (the base of credits)."""

    id: str
    customer: str
    site: str
    monthly_fee: Decimal
    currency: str = "USD"
    room: str | None = None
    rack: str | None = None
    unit: int | None = None
    pdu: str | None = None  # the PDU feeding it: a facility scope (power)
    switch: str | None = None  # its top-of-rack or aggregation switch: a scope (network)
    bmc: str | None = None  # the host id its BMC or enclosure manager is published under


@dataclass(frozen=True)
class Customer:
    """A customer, its contract and its hosts."""

    id: str
    name: str
    account_manager: str | None = None
    contract: Contract = Contract()
    hosts: tuple[Host, ...] = ()
    account_team: tuple[str, ...] = ()  # ids of account people or technicians
    #: None: the file does not say (a load leaves the stored windows alone); () none at all.
    maintenance_windows: tuple[Window, ...] | None = None


@dataclass(frozen=True)
class Spare:
    """Stock of one part at one site."""

    site: str
    part: str
    kind: str
    count: int
    location: str | None = None  # where it stands: "Store room B, shelf 3, bin 12"


@dataclass(frozen=True)
class Fleet:
    """Everything one fleet file declares."""

    sites: tuple[Site, ...] = ()
    technicians: tuple[Technician, ...] = ()
    customers: tuple[Customer, ...] = ()
    spares: tuple[Spare, ...] = ()
    account_people: tuple[AccountPerson, ...] = ()

    @property
    def hosts(self) -> tuple[Host, ...]:
        """All hosts of all customers, in file order."""
        return tuple(h for c in self.customers for h in c.hosts)


@dataclass(frozen=True)
class _At:
    """Where a value sits: the file and the key path inside it."""

    source: str
    path: str = ""

    def key(self, name: str) -> _At:
        """The path of a key of this mapping."""
        return _At(self.source, f"{self.path}.{name}" if self.path else name)

    def item(self, index: int) -> _At:
        """The path of an item of this list."""
        return _At(self.source, f"{self.path}[{index}]")

    def error(self, reason: str, todo: str) -> FleetError:
        """An error naming file, key path, reason and what to do."""
        return FleetError(f"{self.source}: {self.path or 'top level'}: {reason}; {todo}")


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return f"{type(value).__name__} {value!r}"


def _mapping(value: Any, at: _At, required: tuple[str, ...],
             optional: tuple[str, ...]) -> dict[str, Any]:
    """A mapping with no unknown keys and every required key set (null counts as absent)."""
    if not isinstance(value, dict):
        raise at.error(f"expected a mapping, got {_show(value)}", "write it as `key: value` pairs")
    allowed = required + optional
    for key in value:
        if key not in allowed:
            raise at.key(str(key)).error(
                "unknown key", f"remove it or use one of: {', '.join(allowed)}")
    for key in required:
        if value.get(key) is None:
            raise at.key(key).error("missing required key", f"add `{key}:` with a value")
    return {k: v for k, v in value.items() if v is not None}


def _list(value: Any, at: _At) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise at.error(f"expected a list, got {_show(value)}", "write one `- ` item per entry")
    return value


def _ident(value: Any, at: _At) -> str:
    if not isinstance(value, str) or not _IDENT.match(value):
        raise at.error(f"not a valid id: {value!r}", "use 1-63 letters, digits, '.', '_' or "
                       "'-', starting with a letter or digit (quote ids that look like numbers)")
    return value


def _text(value: Any, at: _At) -> str:
    if not isinstance(value, str) or not value.strip():
        raise at.error(f"expected non-empty text, got {_show(value)}", "write it as text")
    return value.strip()


def _label(value: Any, at: _At) -> str:
    """Text where YAML may have read a bare number (room 3, rack 12)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value, at)


def _decimal(value: Any, at: _At, *, minimum: Decimal, strict: bool = False,
             places: int | None = None, below: Decimal | None = None) -> Decimal:
    """A finite number >= minimum (> when strict), with at most `places` decimals."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise at.error(f"expected a number, got {_show(value)}", "write a plain number, unquoted")
    number = Decimal(str(value))  # via str: 450.1 stays 450.1, not its binary neighbour
    if not number.is_finite():
        raise at.error(f"expected a finite number, got {value!r}", "write a plain number")
    if number < minimum or (strict and number == minimum):
        raise at.error(f"must be {'>' if strict else '>='} {minimum}, got {value!r}",
                       "fix the value")
    exponent = number.as_tuple().exponent
    if places is not None and isinstance(exponent, int) and exponent < -places:
        raise at.error(f"at most {places} decimal places, got {value!r}", "round it")
    if below is not None and number >= below:
        raise at.error(f"must be below {below}, got {value!r}", "fix the value")
    return number


def _count(value: Any, at: _At, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= _INT_MAX:
        raise at.error(f"expected a whole number >= {minimum}, got {_show(value)}",
                       "write a whole number, unquoted")
    return value


def _choice(value: Any, at: _At, choices: Iterable[str]) -> str:
    options = sorted(choices)
    if value not in options:
        raise at.error(f"unknown value {value!r}", f"use one of: {', '.join(options)}")
    return str(value)


def _zone(value: Any, at: _At) -> str:
    name = _text(value, at)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise at.error(f"unknown time zone {name!r}",
                       "use an IANA name such as UTC, Europe/London or America/New_York") from None
    return name


def _shift(value: Any, at: _At) -> tuple[time, time]:
    """'HH:MM-HH:MM' (24 h clock, may cross midnight, end may be 24:00) or '24h'."""
    todo = "write \"HH:MM-HH:MM\" on a 24 h clock, quoted (e.g. \"19:00-07:00\"), or 24h"
    if value == "24h":
        return time(0), END_OF_DAY
    m = _SHIFT.match(value) if isinstance(value, str) else None
    if not m:
        raise at.error(f"not a shift: {value!r}", todo)
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise at.error(f"no such time of day in {value!r}", todo)
    if (h1, m1) == (h2, m2):
        raise at.error(f"shift {value!r} starts when it ends", "write 24h for all day")
    end = END_OF_DAY if h2 == 24 else time(h2, m2)
    return time(h1, m1), end


def _site(value: Any, at: _At) -> Site:
    d = _mapping(value, at, ("id", "name"), ("timezone", "manager", "walk_minutes",
                                             "spare_pickup_minutes", "spares_low_stock"))
    walk_at = at.key("walk_minutes")
    walk = d.get("walk_minutes", {})
    if not isinstance(walk, dict):
        raise walk_at.error(f"expected a mapping, got {_show(walk)}",
                            "write room: minutes pairs, e.g. {A: 4, B: 9, '*': 6}")
    return Site(
        id=_ident(d["id"], at.key("id")),
        name=_text(d["name"], at.key("name")),
        timezone=_zone(d["timezone"], at.key("timezone")) if "timezone" in d else "UTC",
        manager=_ident(d["manager"], at.key("manager")) if "manager" in d else None,
        walk_minutes=tuple(
            (_label(room, walk_at), float(_decimal(minutes, walk_at.key(str(room)),
                                                   minimum=Decimal(0))))
            for room, minutes in walk.items()),
        spare_pickup_minutes=float(_decimal(d["spare_pickup_minutes"],
                                            at.key("spare_pickup_minutes"), minimum=Decimal(0)))
        if "spare_pickup_minutes" in d else Site.spare_pickup_minutes,
        spares_low_stock=_count(d["spares_low_stock"], at.key("spares_low_stock"), 0)
        if "spares_low_stock" in d else Site.spares_low_stock,
    )


def _technician(value: Any, at: _At) -> Technician:
    d = _mapping(value, at, ("id", "name", "site"), ("role", "skills", "shift", "email",
                                                     "webhook"))
    skills_at = at.key("skills")
    skills = [_choice(s, skills_at.item(i), SKILLS)
              for i, s in enumerate(_list(d.get("skills"), skills_at))]
    if len(set(skills)) != len(skills):
        raise skills_at.error("a skill is listed twice", "list each skill once")
    start, end = _shift(d["shift"], at.key("shift")) if "shift" in d else (time(0), END_OF_DAY)
    role = _choice(d.get("role", "technician"), at.key("role"), (r.value for r in StaffRole))
    return Technician(
        id=_ident(d["id"], at.key("id")), name=_text(d["name"], at.key("name")),
        site=_ident(d["site"], at.key("site")), role=StaffRole(role),
        skills=tuple(skills), shift_start=start, shift_end=end, **_channels(d, at),
    )


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def _channels(d: Mapping[str, Any], at: _At) -> dict[str, str]:
    """The optional `email` and `webhook` keys of a person, checked."""
    out: dict[str, str] = {}
    if "email" in d:
        if not isinstance(d["email"], str) or not _EMAIL.match(d["email"]):
            raise at.key("email").error(f"not an email address: {d['email']!r}",
                                        "write it as name@domain")
        out["email"] = d["email"]
    if "webhook" in d:
        url = urlparse(d["webhook"]) if isinstance(d["webhook"], str) else None
        if url is None or url.scheme not in ("http", "https") or not url.hostname:
            raise at.key("webhook").error(f"not an http(s) URL: {d['webhook']!r}",
                                          "write it as https://host/path")
        out["webhook"] = d["webhook"]
    return out


def _account_person(value: Any, at: _At) -> AccountPerson:
    d = _mapping(value, at, ("id", "name"), ("email", "webhook"))
    return AccountPerson(id=_ident(d["id"], at.key("id")), name=_text(d["name"], at.key("name")),
                         **_channels(d, at))


def _contract(value: Any, at: _At) -> Contract:
    d = _mapping(value, at, (), ("sla_minutes", "credit_percent", "credit_period_minutes",
                                 "credit_cap_percent", "cage_access"))
    cage = d.get("cage_access", "always")
    if cage not in CAGE_ACCESS:
        raise at.key("cage_access").error(
            f"not a cage access rule: {_show(cage)}",
            "use `always` (technicians enter without asking) or `ask` (the customer decides "
            "per incident on /status)")
    zero, below = Decimal(0), Decimal(1000)  # numeric(6,3) in the schema holds < 1000

    def minutes(key: str, default: float) -> float:
        return float(_decimal(d[key], at.key(key), minimum=zero, strict=True)) if key in d \
            else default

    def percent(key: str, default: Decimal) -> Decimal:
        return _decimal(d[key], at.key(key), minimum=zero, places=3, below=below) if key in d \
            else default

    base = Contract()
    return Contract(
        sla_minutes=minutes("sla_minutes", base.sla_minutes),
        credit_percent=percent("credit_percent", base.credit_percent),
        credit_period_minutes=minutes("credit_period_minutes", 0.0) or None,
        credit_cap_percent=percent("credit_cap_percent", base.credit_cap_percent),
        cage_access=str(cage),
    )


def _host(value: Any, at: _At, customer: str) -> Host:
    d = _mapping(value, at, ("id", "site", "monthly_fee"),
                 ("room", "rack", "unit", "currency", "pdu", "switch", "bmc"))
    currency = d.get("currency", "USD")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise at.key("currency").error(f"not a currency code: {currency!r}",
                                       "use 3 uppercase letters (ISO 4217), e.g. USD or EUR")
    return Host(
        id=_ident(d["id"], at.key("id")), customer=customer,
        site=_ident(d["site"], at.key("site")),
        # numeric(12,2) in the schema: cents, below ten billion
        monthly_fee=_decimal(d["monthly_fee"], at.key("monthly_fee"), minimum=Decimal(0),
                             places=2, below=Decimal(10) ** 10),
        currency=currency,
        room=_label(d["room"], at.key("room")) if "room" in d else None,
        rack=_label(d["rack"], at.key("rack")) if "rack" in d else None,
        unit=_count(d["unit"], at.key("unit"), 1) if "unit" in d else None,  # racks count from 1
        pdu=_label(d["pdu"], at.key("pdu")) if "pdu" in d else None,
        switch=_label(d["switch"], at.key("switch")) if "switch" in d else None,
        bmc=_ident(d["bmc"], at.key("bmc")) if "bmc" in d else None,
    )


def _customer(value: Any, at: _At) -> Customer:
    d = _mapping(value, at, ("id", "name"), ("account_manager", "contract", "hosts",
                                             "account_team", "maintenance_windows"))
    cid = _ident(d["id"], at.key("id"))
    hosts_at, team_at = at.key("hosts"), at.key("account_team")
    return Customer(
        id=cid, name=_text(d["name"], at.key("name")),
        account_manager=_text(d["account_manager"], at.key("account_manager"))
        if "account_manager" in d else None,
        contract=_contract(d["contract"], at.key("contract")) if "contract" in d else Contract(),
        hosts=tuple(_host(h, hosts_at.item(i), cid)
                    for i, h in enumerate(_list(d.get("hosts"), hosts_at))),
        account_team=tuple(_ident(p, team_at.item(i))
                           for i, p in enumerate(_list(d.get("account_team"), team_at))),
        maintenance_windows=_windows(value.get("maintenance_windows", False),
                                     at.key("maintenance_windows")),
    )


def spare_location(value: Any, at: _At) -> str:
    """Where a spare stands: free text of at most LOCATION_MAX characters."""
    text = _label(value, at)
    if len(text) > LOCATION_MAX:
        raise at.error(f"{len(text)} characters is too long for a location",
                       f"say it in {LOCATION_MAX} or fewer, e.g. \"Store room B, shelf 3, bin 12\"")
    return text


def _windows(value: Any, at: _At) -> tuple[Window, ...] | None:
    """A customer's maintenance windows (dispatcher/domain/windows.py); None when absent."""
    if value is False:
        return None
    try:
        return parse_windows([] if value is None else value)
    except WindowError as exc:
        where = _At(at.source, f"{at.path}{exc.path}")
        reason, _, todo = exc.reason.partition("; ")
        raise where.error(reason, todo or "fix the window") from None


def _spare(value: Any, at: _At) -> Spare:
    d = _mapping(value, at, ("site", "part", "kind", "count"), ("location",))
    return Spare(site=_ident(d["site"], at.key("site")), part=_label(d["part"], at.key("part")),
                 kind=_choice(d["kind"], at.key("kind"), SPARE_KINDS),
                 count=_count(d["count"], at.key("count"), 0),
                 location=spare_location(d["location"], at.key("location"))
                 if "location" in d else None)


def _unique(keys: Iterable[tuple[object, _At]], what: str) -> None:
    first: dict[object, _At] = {}
    for key, at in keys:
        if key in first:
            raise at.error(f"duplicate {what} {key!r} (first at {first[key].path})",
                           f"give each {what} its own id, or merge the two entries")
        first[key] = at


def _known(ref: str | None, at: _At, known: Mapping[str, object], what: str,
           section: str) -> None:
    if ref is not None and ref not in known:
        listed = ", ".join(sorted(known)) or "none yet"
        raise at.error(f"unknown {what} {ref!r}",
                       f"add it under `{section}:` or use one of: {listed}")


def _check(fleet: Fleet, root: _At) -> None:
    """Duplicate ids and dangling references, each reported at the key that holds it."""
    s_at, t_at, c_at = root.key("sites"), root.key("technicians"), root.key("customers")
    host_at = [(h, c_at.item(ci).key("hosts").item(hi))
               for ci, c in enumerate(fleet.customers) for hi, h in enumerate(c.hosts)]
    _unique(((s.id, s_at.item(i).key("id")) for i, s in enumerate(fleet.sites)), "site id")
    _unique(((t.id, t_at.item(i).key("id")) for i, t in enumerate(fleet.technicians)),
            "technician id")
    _unique(((c.id, c_at.item(i).key("id")) for i, c in enumerate(fleet.customers)),
            "customer id")
    _unique(((h.id, at.key("id")) for h, at in host_at), "host id")
    _unique((((p.site, p.part), root.key("spares").item(i).key("part"))
             for i, p in enumerate(fleet.spares)), "spare (site, part)")
    sites = {s.id: s for s in fleet.sites}
    people = {t.id: t for t in fleet.technicians}
    for i, s in enumerate(fleet.sites):
        _known(s.manager, s_at.item(i).key("manager"), people, "technician", "technicians")
    for i, t in enumerate(fleet.technicians):
        _known(t.site, t_at.item(i).key("site"), sites, "site", "sites")
    hosts = {h.id: h for h, _ in host_at}
    for h, at in host_at:
        _known(h.site, at.key("site"), sites, "site", "sites")
        if h.bmc is not None and h.bmc not in hosts:
            raise at.key("bmc").error(
                f"unknown host {h.bmc!r}", "declare the BMC's own host (the id the SNMP proxy "
                "publishes it under) under a customer's hosts, or remove `bmc:`")
        if h.bmc == h.id:
            raise at.key("bmc").error(f"host {h.id!r} names itself as its BMC",
                                      "name the host id the SNMP proxy publishes its BMC under")
    for i, p in enumerate(fleet.spares):
        _known(p.site, root.key("spares").item(i).key("site"), sites, "site", "sites")
    a_at = root.key("account_people")
    _unique(((a.id, a_at.item(i).key("id")) for i, a in enumerate(fleet.account_people)),
            "person id")
    reachable: dict[str, object] = {a.id: a for a in fleet.account_people}
    for i, t in enumerate(fleet.technicians):
        if t.id in reachable:
            raise t_at.item(i).key("id").error(f"{t.id!r} is also under account_people",
                                               "declare each person in one section")
    reachable.update(people)
    for ci, c in enumerate(fleet.customers):
        team_at = c_at.item(ci).key("account_team")
        for i, member in enumerate(c.account_team):
            _known(member, team_at.item(i), reachable, "person", "account_people")


def parse_fleet(data: Any, source: str) -> Fleet:
    """Validate a loaded fleet-file value into a Fleet; raise FleetError naming file and key."""
    root = _At(source)
    if data is None:
        raise root.error("the file is empty", "declare sites, technicians, customers and "
                         "spares (see docs/fleet.example.yaml)")
    top = _mapping(data, root, (), ("sites", "technicians", "customers", "spares",
                                    "account_people"))

    def section(name: str) -> list[tuple[Any, _At]]:
        at = root.key(name)
        return [(v, at.item(i)) for i, v in enumerate(_list(top.get(name), at))]

    fleet = Fleet(
        sites=tuple(_site(v, at) for v, at in section("sites")),
        technicians=tuple(_technician(v, at) for v, at in section("technicians")),
        customers=tuple(_customer(v, at) for v, at in section("customers")),
        spares=tuple(_spare(v, at) for v, at in section("spares")),
        account_people=tuple(_account_person(v, at) for v, at in section("account_people")),
    )
    _check(fleet, root)
    return fleet


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML keeps the last)."""


def _no_duplicate_keys(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[str] = set()
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
            continue  # `<<: *anchor` merges are meant to be overridden
        if key_node.value in seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark,
                f"key {key_node.value!r} is given twice", key_node.start_mark)
        seen.add(key_node.value)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)


def load_fleet_file(path: Path) -> Fleet:
    """Read and validate a fleet YAML file; every problem is a FleetError naming the file."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FleetError(f"{source}: cannot read the fleet file ({exc}); check the path") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise FleetError(f"{source}: {where}: not valid YAML ({exc.problem or exc.context}); fix "
                         "it there (quote text holding ': ' or ' #'; give each key once)") from None
    except yaml.YAMLError as exc:
        raise FleetError(f"{source}: not valid YAML ({exc}); fix the syntax") from None
    return parse_fleet(data, source)
