"""The shape of a new part's serial, per part kind: is what the technician scanned or typed
plausibly the serial of a part of this kind, and not the old part's or the spare's part
number? Pure: strings in, a problem (or nothing) out.

The patterns are kept to the regular-expression syntax Python and JavaScript share, because
the job card checks the same pattern on the phone before it queues the action.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

MAX_LEN = 64  # the longest label serial seen on server parts is about 30 characters


@dataclass(frozen=True)
class Shape:
    """What a serial of one part kind looks like, for the check and for the person."""

    pattern: str  # matched case-insensitively against the whole serial
    expected: str  # said to the technician when the serial does not fit
    example: str

    def matches(self, serial: str) -> bool:
        """Whether the whole serial fits the pattern."""
        return re.fullmatch(self.pattern, serial, re.IGNORECASE) is not None


#: Defaults from the labels of common server parts; each may be replaced in the configuration
#: (`dispatcher.serials.<kind>`), since a fleet buys from whom it buys.
DEFAULT_SHAPES: Mapping[str, Shape] = {
    # Seagate 8 (ZA1B2C3D), HGST 8, Toshiba 12, WD "WD-WX11A1234567", Samsung 15, Intel 18
    "disk": Shape(r"[A-Z0-9][A-Z0-9-]{6,22}[A-Z0-9]", "8 to 24 letters and digits "
                  "(dashes allowed inside)", "ZA1B2C3D"),
    # the SPD serial dmidecode and the module label print: 4 bytes as 8 hex digits
    "dimm": Shape(r"(0x)?[0-9A-F]{8}", "8 hexadecimal digits (the module label's serial)",
                  "3A0B1C2D"),
    # Dell PPID (CN0T1234567890ABCD), HPE 14, Supermicro P-numbers
    "psu": Shape(r"[A-Z0-9][A-Z0-9-]{6,28}[A-Z0-9]", "8 to 30 letters and digits",
                 "CN0T12345678901A"),
    "fan": Shape(r"[A-Z0-9][A-Z0-9-]{4,22}[A-Z0-9]", "6 to 24 letters and digits",
                 "FAN1234567"),
    # vendor serials, or the card's base MAC address (with or without separators)
    "nic": Shape(r"[A-Z0-9][A-Z0-9:-]{6,28}[A-Z0-9]", "8 to 30 letters and digits, or the "
                 "card's MAC address", "A0369F123456"),
    "cpu": Shape(r"[A-Z0-9][A-Z0-9-]{6,22}[A-Z0-9]", "8 to 24 letters and digits",
                 "U2NC123456789"),
    "raid": Shape(r"[A-Z0-9][A-Z0-9-]{6,22}[A-Z0-9]", "8 to 24 letters and digits "
                  "(the member disk's serial)", "ZA1B2C3D"),
}
#: Any other kind: letters, digits and the separators labels use.
ANY = Shape(r"[A-Z0-9][A-Z0-9._/:-]{2,62}[A-Z0-9]", "4 to 64 letters and digits", "ABC12345")


def shapes(overrides: Mapping[str, str] | None = None) -> dict[str, Shape]:
    """The defaults with the configured patterns in place of theirs."""
    out = dict(DEFAULT_SHAPES)
    for kind, pattern in (overrides or {}).items():
        if pattern:
            base = out.get(kind, ANY)
            out[kind] = Shape(pattern, f"the configured shape {pattern}", base.example)
    return out


def shape(kind: str, table: Mapping[str, Shape] | None = None) -> Shape:
    """The shape a new part of this kind has."""
    return (table if table is not None else DEFAULT_SHAPES).get(kind, ANY)


def problem(kind: str, serial: str, *, old_serial: str | None = None,
            spare_part: str | None = None, table: Mapping[str, Shape] | None = None
            ) -> str | None:
    """What is wrong with a new part's serial, said so the technician can fix it; None if fine.

    The spare's part number (the model printed beside the serial) and the failed part's own
    serial are the two labels most often scanned by mistake.
    """
    s = serial.strip()
    want = shape(kind, table)
    if not s:
        return f"scan or type the new {kind}'s serial: {want.expected}, e.g. {want.example}"
    if len(s) > MAX_LEN:
        return f"{len(s)} characters is too long for a serial; expected {want.expected}"
    if spare_part and s.casefold() == spare_part.strip().casefold():
        return (f"{s} is the spare's part number (the model), not its serial; scan the label "
                f"marked S/N or SN: {want.expected}, e.g. {want.example}")
    if old_serial and s.casefold() == old_serial.strip().casefold():
        return f"{s} is the failed part's serial; scan the new part's label"
    if not want.matches(s) or not any(c.isdigit() for c in s):
        return (f"{s} does not look like a {kind} serial: expected {want.expected} (at least "
                f"one digit), e.g. {want.example}")
    return None
