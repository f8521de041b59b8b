"""The only module that touches pysnmp: SNMP v2c/v3 walks of BMCs and PDUs, and traps.

Everything here runs on one asyncio loop (pysnmp 7's ``hlapi.v3arch.asyncio``). Values
leave this module as plain ``int`` or ``str`` keyed by dotted OID strings, so the
profiles in ``agent.profiles`` never see a pysnmp object; every failure leaves it as an
``SnmpError`` whose message says what to check, never as a pysnmp exception.

Traps come from anyone who can send UDP to the trap port, so nothing a datagram holds may
raise past this module: an unreadable datagram or trap is dropped, and what is said about
it goes through a LogLimit, so a flood cannot fill the log.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config as snmp_config
from pysnmp.entity import engine as snmp_engine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_walk_cmd,
)
from pysnmp.hlapi.v3arch.asyncio import auth as usm
from pysnmp.proto.error import StatusInformation
from pysnmp.proto.rfc1902 import Integer, ObjectIdentifier, OctetString

log = logging.getLogger(__name__)

#: A value as the profiles see it.
Scalar = int | str
#: Values one walk may bring: over 20 times the 870 under a c7000 Onboard Administrator's
#: roots, and a bound on what a device that answers without end can make the proxy hold.
MAX_WALK_VALUES = 20_000
#: Rows asked for per GETBULK: a c7000 Onboard Administrator answers 50 columns of a
#: 10-row table in one packet; snmpsim and most BMCs cap a response at 64 varbinds.
MAX_REPETITIONS = 50

AUTH_PROTOCOLS: dict[str, tuple[int, ...]] = {
    "md5": usm.USM_AUTH_HMAC96_MD5,
    "sha": usm.USM_AUTH_HMAC96_SHA,
    "sha224": usm.USM_AUTH_HMAC128_SHA224,
    "sha256": usm.USM_AUTH_HMAC192_SHA256,
    "sha384": usm.USM_AUTH_HMAC256_SHA384,
    "sha512": usm.USM_AUTH_HMAC384_SHA512,
}
PRIV_PROTOCOLS: dict[str, tuple[int, ...]] = {
    "des": usm.USM_PRIV_CBC56_DES,
    "3des": usm.USM_PRIV_CBC168_3DES,
    "aes": usm.USM_PRIV_CFB128_AES,
    "aes192": usm.USM_PRIV_CFB192_AES,
    "aes256": usm.USM_PRIV_CFB256_AES,
}

#: pysnmp error indications (their class names) -> what the operator should check.
_HINTS = {
    "RequestTimedOut": "no answer: check the address and port, that SNMP is enabled on the "
    "device, and the community (v2c; a wrong one is silently ignored) or v3 user and context",
    "WrongDigest": "SNMPv3 authentication failed: wrong auth_key or auth_protocol",
    "UnknownUserName": "SNMPv3 user unknown to the device: check user",
    "UnsupportedSecurityLevel": "the device does not allow this security level for the user: "
    "check auth_protocol/priv_protocol",
    "DecryptionError": "SNMPv3 privacy failed: wrong priv_key or priv_protocol",
    "EncryptionError": "SNMPv3 privacy is not available: install the 'cryptography' package "
    "(pip install 'hourglass[snmp-priv]')",
    "NotInTimeWindow": "SNMPv3 time window mismatch: the device's engine time moved; retry",
}


class SnmpError(Exception):
    """A poll failed; the message names the device and what to check."""


@dataclass(frozen=True)
class Credentials:
    """How to reach and authenticate to one device."""

    address: str
    port: int = 161
    version: str = "v2c"
    community: str | None = None
    user: str | None = None
    auth_protocol: str | None = None
    auth_key: str | None = None
    priv_protocol: str | None = None
    priv_key: str | None = None
    context: str = ""
    timeout_s: float = 2.0
    retries: int = 1

    @property
    def where(self) -> str:
        """``address:port`` for messages."""
        return f"{self.address}:{self.port}"


def auth_data(cred: Credentials) -> CommunityData | UsmUserData:
    """pysnmp credentials: a community (v2c, mpModel 1) or a USM user (v3)."""
    if cred.version == "v2c":
        # v2c is what most BMCs and PDUs in the field speak; v3 is offered beside it
        return CommunityData(cred.community or "", mpModel=1)  # noqa: S508
    auth = AUTH_PROTOCOLS[cred.auth_protocol or "sha"] if cred.auth_key else usm.USM_AUTH_NONE
    priv = PRIV_PROTOCOLS[cred.priv_protocol or "aes"] if cred.priv_key else usm.USM_PRIV_NONE
    return UsmUserData(
        cred.user or "",
        authKey=cred.auth_key,
        privKey=cred.priv_key,
        authProtocol=auth,
        privProtocol=priv,
    )


#: pysnmp's integer types that are not rfc1902.Integer (Integer32 is its base class).
_INTEGERS = ("Counter32", "Counter64", "Gauge32", "Unsigned32", "TimeTicks", "Integer32")
#: An OID as text: 2 to 128 sub-identifiers (RFC 2578 section 3.5), each below 2^32.
_OID = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,10}){1,127}")
SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"  # which notification a trap is
SNMP_TRAP_ADDRESS = "1.3.6.1.6.3.18.1.3.0"  # the device a forwarded trap is about


def _octets(raw: bytes) -> str:
    """Octets as text when they are printable UTF-8, else as hex."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.hex()
    return text if text.isprintable() or not text else raw.hex()


def _dotted(oid: Any) -> str | None:
    """An OID's sub-identifiers joined by dots (None: not an OID with a value, or one with a
    sub-identifier too large to print, which pysnmp builds but no device can send)."""
    if getattr(oid, "isValue", False) is not True or not hasattr(oid, "asTuple"):
        return None
    try:
        return ".".join(str(p) for p in oid.asTuple())
    except ValueError:  # int to str refuses more than 4,300 digits (CPython's limit)
        return None


def to_scalar(value: Any) -> Scalar:
    """A pysnmp value as int or str (octet strings as text, or hex when not text).

    Never raises: every str it returns is printable text or hex, except a pysnmp type's
    own prettyPrint. Plain Python values are taken as such (bytes as octets); a pysnmp
    template without a value, or a value that cannot be printed, reads as ``<its type>``.
    """
    if isinstance(value, int):  # a plain int or bool: as it is
        return int(value)
    if isinstance(value, str):
        return _octets(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes | bytearray):
        return _octets(bytes(value))
    if getattr(value, "isValue", True) is False:  # a pysnmp type with no value (a template)
        return f"<{type(value).__name__}>"
    if isinstance(value, Integer) or value.__class__.__name__ in _INTEGERS:
        return int(value)
    if value.__class__.__name__ == "IpAddress":  # v2c (rfc1902) and v1 (rfc1155): 4 octets
        raw = bytes(value)
        return str(ipaddress.IPv4Address(raw)) if len(raw) == 4 else raw.hex()
    if isinstance(value, ObjectIdentifier):
        return _dotted(value) or f"<{type(value).__name__}>"
    if isinstance(value, OctetString):
        return _octets(bytes(value))
    try:
        return str(value.prettyPrint()) if hasattr(value, "prettyPrint") else str(value)
    except Exception:  # an odd object's own printing: whatever it raises, it is just a value
        return f"<{type(value).__name__}>"


def describe(cred: Credentials, indication: object) -> str:
    """An error indication turned into a message that names the device and the fix."""
    name = type(indication).__name__
    hint = _HINTS.get(name, str(indication))
    return f"SNMP {cred.version} to {cred.where}: {hint} ({name})"


class Poller:
    """Walks OID subtrees of devices with one shared SNMP engine (one per event loop)."""

    def __init__(self) -> None:
        """A fresh engine; create it inside the loop that will use it."""
        self.engine = SnmpEngine()

    async def walk(self, cred: Credentials, roots: Sequence[str]) -> dict[str, Scalar]:
        """Every value under ``roots`` (GETBULK walks); raises SnmpError on any failure."""
        try:
            target = await UdpTransportTarget.create(
                (cred.address, cred.port), timeout=cred.timeout_s, retries=cred.retries
            )
            out: dict[str, Scalar] = {}
            for root in roots:
                await self._walk_one(cred, target, root, out)
            return out
        except StatusInformation as exc:  # pysnmp raises some USM failures instead
            raise SnmpError(describe(cred, exc.get("errorIndication", exc))) from None
        except PySnmpError as exc:
            raise SnmpError(f"SNMP {cred.version} to {cred.where}: {exc}") from None
        except OSError as exc:  # unknown host name, unreachable network
            raise SnmpError(f"SNMP {cred.version} to {cred.where}: {exc}") from None

    async def _walk_one(
        self, cred: Credentials, target: UdpTransportTarget, root: str, out: dict[str, Scalar]
    ) -> None:
        """Walk one subtree into ``out``."""
        walker = bulk_walk_cmd(
            self.engine,
            auth_data(cred),
            target,
            ContextData(contextName=cred.context),
            0,
            MAX_REPETITIONS,
            ObjectType(ObjectIdentity(root)),
            lexicographicMode=False,
            # numeric OIDs only: no MIB loading (pysmi, when installed, would fetch MIBs)
            lookupMib=False,
        )
        async for indication, status, index, var_binds in walker:
            if indication:
                raise SnmpError(describe(cred, indication))
            if status:
                raise SnmpError(
                    f"SNMP {cred.version} to {cred.where}: the device answered "
                    f"{status.prettyPrint()} at {index} while walking {root}"
                )
            for oid, value in var_binds:
                if value.__class__.__name__ in ("NoSuchObject", "NoSuchInstance", "EndOfMibView"):
                    continue
                name = _dotted(oid)
                if name is None:
                    continue  # no OID a profile reads: nothing to key it by
                out[name] = to_scalar(value)
            if len(out) > MAX_WALK_VALUES:
                raise SnmpError(
                    f"SNMP {cred.version} to {cred.where}: the device returned more than "
                    f"{MAX_WALK_VALUES} values (walking {root}); is it answering in a loop?"
                )

    def close(self) -> None:
        """Close the engine's sockets."""
        self.engine.close_dispatcher()


class LogLimit:
    """At most ``burst`` log lines per ``window_s``; the rest are counted, and their number
    is logged with the first line allowed in a later window."""

    def __init__(self, burst: int = 20, window_s: float = 60.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """20 a minute: every trap of a few failing parts is seen, a flood is not logged."""
        self.burst, self.window_s, self.monotonic = burst, window_s, monotonic
        self.start = monotonic()
        self.used = 0
        self.held = 0

    def allow(self) -> bool:
        """Whether one more line may be logged now (if not, it is counted as held back)."""
        now = self.monotonic()
        if now - self.start >= self.window_s:
            if self.held:
                log.warning("held back %d SNMP log lines in the last %.0f s (a flood of traps "
                            "or datagrams?)", self.held, now - self.start)
            self.start, self.used, self.held = now, 0, 0
        if self.used < self.burst:
            self.used += 1
            return True
        self.held += 1
        return False


def brief(exc: BaseException) -> str:
    """An exception as one short line (pysnmp's can hold a whole hex dump)."""
    return f"{type(exc).__name__}: {str(exc)[:200]}"


@dataclass(frozen=True)
class Trap:
    """One notification received: where it came from and its variable bindings."""

    source: str
    var_binds: Mapping[str, Scalar]

    @property
    def trap_oid(self) -> str | None:
        """snmpTrapOID.0: which notification this is (None: absent or not an OID)."""
        value = self.var_binds.get(SNMP_TRAP_OID)
        return value if isinstance(value, str) and _OID.fullmatch(value) else None

    @property
    def address(self) -> str | None:
        """snmpTrapAddress.0: the device a forwarded trap is about (None: absent or not an
        IPv4 address)."""
        value = self.var_binds.get(SNMP_TRAP_ADDRESS)
        if not isinstance(value, str) or len(value) > 15:  # 15: "255.255.255.255"
            return None
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            return None


def trap_from(source: str, var_binds: Iterable[tuple[Any, Any]]) -> Trap:
    """A received notification as a Trap: every binding whose name is an OID, by its text."""
    values: dict[str, Scalar] = {}
    for oid, value in var_binds:
        name = oid if isinstance(oid, str) else _dotted(oid)
        if name is not None:
            values[name] = to_scalar(value)
    return Trap(source, values)


class _GuardedUdp(udp.UdpTransport):  # type: ignore[misc]  # pysnmp ships no type hints
    """pysnmp's UDP transport, but a datagram pysnmp fails on is dropped and reported.

    pysnmp lets some errors escape its dispatcher (pyasn1 raises TypeError on some random
    bytes), and the event loop would log each with a full traceback.
    """

    def __init__(self, on_error: Callable[[Any, bytes, Exception], None]) -> None:
        """``on_error(address, datagram, exc)`` hears of each datagram dropped."""
        super().__init__()
        self.on_error = on_error

    def datagram_received(self, datagram: bytes, address: Any) -> None:
        """Hand the datagram to pysnmp on the next turn of the loop, as pysnmp does."""
        self.loop.call_soon(self._dispatch, datagram, address)

    def _dispatch(self, datagram: bytes, address: Any) -> None:
        """pysnmp's processing of one datagram, guarded."""
        try:
            self._callback_function(self, address, datagram)
        except Exception as exc:  # whatever pysnmp raises on bytes it cannot read
            self.on_error(address, datagram, exc)


class TrapReceiver:
    """Receives SNMP v1/v2c traps on a UDP address and hands each on as a Trap."""

    def __init__(
        self, address: tuple[str, int], community: str, on_trap: Callable[[Trap], None],
        limit: LogLimit | None = None,
    ) -> None:
        """Listen on ``address`` for ``community``; create it inside the running loop.

        The socket is bound here, so a taken or foreign address fails now as an SnmpError
        instead of later inside the event loop where nobody would see it. ``limit`` bounds
        what is logged about datagrams and traps (one may be shared with ``on_trap``).
        """
        self.on_trap = on_trap
        self.limit = limit or LogLimit()
        self.dropped = 0  # datagrams pysnmp could not process
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(address)
        except OSError as exc:
            sock.close()
            raise SnmpError(f"cannot receive traps on {address[0]}:{address[1]}: "
                            f"{exc.strerror or exc}") from None
        sock.setblocking(False)
        self.engine = snmp_engine.SnmpEngine()
        transport = _GuardedUdp(self._unreadable).open_server_mode(sock=sock)
        snmp_config.add_transport(self.engine, udp.DOMAIN_NAME, transport)
        snmp_config.add_v1_system(self.engine, "hg-traps", community)
        ntfrcv.NotificationReceiver(self.engine, self._received)
        self.engine.transport_dispatcher.job_started(1)  # keep the dispatcher serving

    def _unreadable(self, address: Any, datagram: bytes, exc: Exception) -> None:
        """A datagram pysnmp failed on: count it, say so within the limit, drop it."""
        self.dropped += 1
        if self.limit.allow():
            log.warning("dropped an unreadable SNMP datagram (%d bytes) from %s: %s",
                        len(datagram), address, brief(exc))

    def _received(
        self,
        engine: Any,
        state_reference: Any,
        context_engine_id: Any,
        context_name: Any,
        var_binds: Sequence[tuple[Any, Any]],
        cb_ctx: Any,
    ) -> None:
        """pysnmp's callback: convert at the edge, then hand on."""
        _domain, address = engine.message_dispatcher.get_transport_info(state_reference)
        trap = trap_from(str(address[0]), var_binds)
        if self.limit.allow():
            log.info("trap %s from %s", trap.trap_oid, trap.source)
        try:
            self.on_trap(trap)
        except Exception:  # a bad handler must not stop the receiver
            if self.limit.allow():
                log.exception("trap handler failed")

    def close(self) -> None:
        """Stop listening."""
        self.engine.transport_dispatcher.job_finished(1)
        self.engine.close_dispatcher()
