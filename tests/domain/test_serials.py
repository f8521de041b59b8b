"""A new part's serial against the part kind's shape (dispatcher.domain.serials), and the
configured override (hourglass.config: dispatcher.serials.<kind>)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.settings import ConfigError
from dispatcher.domain import serials
from hourglass.config import load_config


@pytest.mark.parametrize(("kind", "serial", "says"), [
    ("disk", "ZA1B2C3D", None),  # Seagate
    ("disk", "WD-WX11A1234567", None),  # Western Digital, with its dash
    ("disk", "za1b2c3d", None),  # typed in lower case
    ("disk", "ZA1", "8 to 24"),
    ("disk", "ZAXBYCZD", "at least one digit"),
    ("disk", "ST8000NM000A", "part number"),  # the spare's model, scanned by mistake
    ("disk", "ZA1OLD99", "failed part's serial"),
    ("dimm", "3A0B1C2D", None),
    ("dimm", "ZA1B2C3D", "8 hexadecimal digits"),  # a disk's serial is not a DIMM's
    ("psu", "CN0T12345678901A", None),
    ("nic", "A0:36:9F:12:34:56", None),
    ("toaster", "ABC-123", None),  # any other kind: letters, digits, separators
    ("disk", "", "scan or type"),
    ("disk", "Z" * 70 + "1", "too long"),
])
def test_the_shape_of_a_new_serial(kind: str, serial: str, says: str | None) -> None:
    got = serials.problem(kind, serial, old_serial="ZA1OLD99", spare_part="ST8000NM000A")
    if says is None:
        assert got is None
    else:
        assert got is not None
        assert says in got


def test_a_configured_shape_replaces_the_default(tmp_path: Path) -> None:
    table = serials.shapes({"disk": r"HG[0-9]{6}"})
    assert serials.problem("disk", "HG123456", table=table) is None
    assert "HG[0-9]{6}" in (serials.problem("disk", "ZA1B2C3D", table=table) or "")
    f = tmp_path / "hourglass.yaml"
    f.write_text("dispatcher:\n  serials:\n    disk: 'HG[0-9]{6}'\n")
    assert load_config(f, {}).dispatcher.serials.overrides() == {"disk": "HG[0-9]{6}"}
    f.write_text("dispatcher:\n  serials:\n    dimm: '([0-9'\n")
    with pytest.raises(ConfigError, match=r"dispatcher\.serials\.dimm"):
        load_config(f, {})
