"""The only module that touches pysnmp: SNMP v2c/v3 walks of BMCs and PDUs, and traps.

Everything here runs on one asyncio loop (pysnmp 7's ``hlapi.v3arch.asyncio``). Values
leave this module as plain ``int`` or ``str`` keyed by dotted OID strings, so the
profiles in ``agent.proxy`` never see a pysnmp object; every failure leaves it as an
``SnmpError`` whose message says what to check, never as a pysnmp exception.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping, Sequence
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


def to_scalar(value: Any) -> Scalar:
    """A pysnmp value as int or str (octet strings as text, or hex when not text)."""
    if isinstance(value, Integer) or value.__class__.__name__ in (
        "Counter32", "Counter64", "Gauge32", "Unsigned32", "TimeTicks", "Integer32"
    ):
        return int(value)
    if isinstance(value, ObjectIdentifier):
        return ".".join(str(p) for p in value)
    if isinstance(value, OctetString):
        raw = bytes(value)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.hex()
        return text if text.isprintable() or not text else raw.hex()
    return str(value.prettyPrint())


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
                out[str(oid)] = to_scalar(value)

    def close(self) -> None:
        """Close the engine's sockets."""
        self.engine.close_dispatcher()


@dataclass(frozen=True)
class Trap:
    """One notification received: where it came from and its variable bindings."""

    source: str
    var_binds: Mapping[str, Scalar]

    @property
    def trap_oid(self) -> str | None:
        """snmpTrapOID.0: which notification this is."""
        value = self.var_binds.get("1.3.6.1.6.3.1.1.4.1.0")
        return str(value) if value is not None else None


class TrapReceiver:
    """Receives SNMP v1/v2c traps on a UDP address and hands each on as a Trap."""

    def __init__(
        self, address: tuple[str, int], community: str, on_trap: Callable[[Trap], None]
    ) -> None:
        """Listen on ``address`` for ``community``; create it inside the running loop.

        The socket is bound here, so a taken or foreign address fails now as an SnmpError
        instead of later inside the event loop where nobody would see it.
        """
        self.on_trap = on_trap
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(address)
        except OSError as exc:
            sock.close()
            raise SnmpError(f"cannot receive traps on {address[0]}:{address[1]}: "
                            f"{exc.strerror or exc}") from None
        sock.setblocking(False)
        self.engine = snmp_engine.SnmpEngine()
        transport = udp.UdpTransport().open_server_mode(sock=sock)
        snmp_config.add_transport(self.engine, udp.DOMAIN_NAME, transport)
        snmp_config.add_v1_system(self.engine, "hg-traps", community)
        ntfrcv.NotificationReceiver(self.engine, self._received)
        self.engine.transport_dispatcher.job_started(1)  # keep the dispatcher serving

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
        trap = Trap(str(address[0]), {str(oid): to_scalar(val) for oid, val in var_binds})
        log.info("trap %s from %s", trap.trap_oid, trap.source)
        try:
            self.on_trap(trap)
        except Exception:  # a bad handler must not stop the receiver
            log.exception("trap handler failed")

    def close(self) -> None:
        """Stop listening."""
        self.engine.transport_dispatcher.job_finished(1)
        self.engine.close_dispatcher()
