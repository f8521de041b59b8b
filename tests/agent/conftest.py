"""Helpers for the agent's tests: the fixture roots and replay roots built from them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SMARTCTL = FIXTURES / "smartctl"
SYSFS_ROOT = FIXTURES / "sysfs" / "node_exporter"
MDSTAT = FIXTURES / "mdstat" / "procfs-many-arrays"


def smart_json(name: str, **changes: Any) -> dict[str, Any]:
    """A smartctl fixture as a dict, with top-level keys replaced."""
    data: dict[str, Any] = json.loads((SMARTCTL / name).read_text())
    data.update(changes)
    return data


def failing(name: str, serial: str) -> dict[str, Any]:
    """A fixture turned into a failing drive, as smartctl documents it: health FAILED, bit 3."""
    data = smart_json(name, serial_number=serial, smart_status={"passed": False})
    data["smartctl"] = {**data["smartctl"], "exit_status": data["smartctl"]["exit_status"] | 8}
    return data


@pytest.fixture
def replay_root(tmp_path: Path) -> Callable[..., Path]:
    """Build a replay root: smartctl outputs per device, optionally the hwmon/EDAC sysfs."""

    def build(
        disks: dict[str, dict[str, Any]] | None = None,
        *,
        sysfs: bool = False,
        mdstat: bool = False,
        files: dict[str, str] | None = None,
    ) -> Path:
        root = tmp_path / "root"
        if sysfs:
            shutil.copytree(SYSFS_ROOT / "sys", root / "sys", symlinks=True)
        for dev, data in (disks or {}).items():
            path = root / "cmd" / "smartctl" / f"{dev}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data))
        if mdstat:
            (root / "proc").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(MDSTAT, root / "proc" / "mdstat")
        for rel, text in (files or {}).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        root.mkdir(exist_ok=True)
        return root

    return build
